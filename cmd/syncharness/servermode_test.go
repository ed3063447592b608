package main

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("--server-mode", func() {
	DescribeTable("rejects a bad mode with exit status 2, in run and explore",
		func(cmd string, mode, message string) {
			args := []string{cmd, "--server-mode", mode}
			if cmd == "explore" {
				args = append(args, "--runs", "1")
			}
			res := runCLI(args...)
			Expect(res.Code).To(Equal(exitUsage))
			Expect(res.Stderr).To(ContainSubstring(message))
		},
		Entry("run: an unknown mode", "run", "sloppy", `--server-mode: server mode "sloppy": want one of idle-every, mailboxid`),
		Entry("run: idle-every without its period", "run", "idle-every", "idle-every=DURATION"),
		Entry("explore: an unknown mode", "explore", "mailboxid,sloppy", `server mode "sloppy"`),
	)

	It("makes folder_swap_names a server finding under uidvalidity-clock (exit 4), and a pass with MAILBOXID's help for the engine", func() {
		res := runCLI("run", "--server-mode", "uidvalidity-clock", "--filter", "^folder_swap_names$")
		Expect(res.Code).To(Equal(4), res.Stdout+res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("SERVER folder_swap_names"))
		Expect(res.Stdout).To(ContainSubstring("S3 no UID reused: UID 1 in Work"))
		Expect(res.Stdout).To(ContainSubstring("I6 flags"), "the engine, misled, is named too")
		Expect(res.Stdout).To(ContainSubstring("--server-mode uidvalidity-clock"), "the reproduce line replays the mode")

		res = runCLI("run", "--server-mode", "uidvalidity-clock,mailboxid", "--filter", "^folder_swap_names$")
		Expect(res.Code).To(Equal(4), res.Stdout+res.Stderr)
		Expect(res.Stdout).NotTo(ContainSubstring("I6 flags"))
	})

	It("cannot be used with --server", func() {
		res := runCLI("run", "--server", "imap://alice@127.0.0.1:1", "--server-mode", "mailboxid")
		Expect(res.Code).To(Equal(exitUsage))
		Expect(res.Stderr).To(ContainSubstring("cannot be used with --server"))
	})
})
