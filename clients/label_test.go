package clients_test

import (
	"bytes"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
)

var _ = Describe("Message labels", func() {
	It("carries the label in the Message-ID, the Subject and the first body line", func() {
		raw := clients.MakeMessage(clients.MessageSpec{Label: "m7", Run: "r1"})
		Expect(string(raw)).To(ContainSubstring("Message-ID: <m7.r1@syncharness.invalid>\r\n"))
		Expect(string(raw)).To(ContainSubstring("Subject: m7\r\n"))
		_, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		Expect(body).To(HavePrefix("m7\r\n"))
		Expect(clients.Label(raw)).To(Equal("m7"))
		Expect(clients.MessageID(raw)).To(Equal("m7.r1@syncharness.invalid"))
	})

	DescribeTable("finds the label however the message was changed",
		func(raw string, want string) {
			Expect(clients.Label([]byte(raw))).To(Equal(want))
		},
		Entry("a syncharness Message-ID wins over the Subject", "Subject: other\r\nMessage-ID: <m1.x@syncharness.invalid>\r\n\r\nbody\r\n", "m1"),
		Entry("a foreign Message-ID falls back to the Subject", "Message-ID: <abc@example.org>\r\nSubject: m2\r\n\r\nbody\r\n", "m2"),
		Entry("no Message-ID: the Subject", "Subject: m3\r\n\r\nm3\r\n", "m3"),
		Entry("bare LF line endings", "Subject: m4\n\nm4\n", "m4"),
		Entry("no Subject: the first body line", "From: a@b\r\n\r\nm5\r\nmore\r\n", "m5"),
		Entry("nothing at all", "From: a@b\r\n\r\n", ""),
		Entry("header names in any case", "SUBJECT: other\r\nmessage-ID: <m6.x@syncharness.invalid>\r\n\r\nbody\r\n", "m6"),
		Entry("the last Subject", "Subject: m7\r\nsubject: m8\r\n\r\nbody\r\n", "m8"),
	)

	It("reads a message's label and Message-ID allocating only the result (they run for every download)", func() {
		raw := clients.MakeMessage(clients.MessageSpec{Label: "m9", Run: "r1", Size: 10000})
		Expect(testing.AllocsPerRun(50, func() { _ = clients.Label(raw) })).To(BeNumerically("<=", 1))
		Expect(testing.AllocsPerRun(50, func() { _ = clients.MessageID(raw) })).To(BeNumerically("<=", 1))
		Expect(clients.MessageID([]byte("X: y\r\nmessage-id:  <a@b> \r\n\r\n"))).To(Equal("a@b"))
	})

	It("is deterministic and pads to the requested size", func() {
		spec := clients.MessageSpec{Label: "m1", Run: "r", Size: 10000, Seed: 3}
		a, b := clients.MakeMessage(spec), clients.MakeMessage(spec)
		Expect(bytes.Equal(a, b)).To(BeTrue())
		Expect(len(a)).To(BeNumerically(">=", 10000))
		spec.Seed = 4
		Expect(bytes.Equal(a, clients.MakeMessage(spec))).To(BeFalse())
		spec.NoMessageID = true
		Expect(clients.MessageID(clients.MakeMessage(spec))).To(BeEmpty())
	})

	It("hashes content independently of line endings", func() {
		crlf := []byte("Subject: x\r\n\r\nbody\r\n")
		lf := []byte("Subject: x\n\nbody\n")
		Expect(clients.ContentHash(crlf)).To(Equal(clients.ContentHash(lf)))
		Expect(clients.ContentHash(crlf)).NotTo(Equal(clients.ContentHash([]byte("Subject: y\r\n\r\nbody\r\n"))))
	})

	It("adds sync statistics and says whether a round changed anything", func() {
		var s clients.SyncStats
		Expect(s.Changed()).To(BeFalse())
		s.Add(clients.SyncStats{Commands: 3, LocalChanges: 1})
		s.Add(clients.SyncStats{Commands: 2, Mutations: 1})
		Expect(s.Commands).To(Equal(5))
		Expect(s.Changed()).To(BeTrue())
	})
})
