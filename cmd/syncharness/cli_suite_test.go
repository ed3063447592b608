package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/syncharness/syncharness/testsupport/skipreport"
)

func TestCLI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "syncharness CLI")
}

// The specs this suite skipped, with their reasons, show without -ginkgo.v too.
var _ = ReportAfterSuite("skipped specs", skipreport.Print)

// cliResult is what one run of the command line printed and its exit code.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// runCLI runs the syncharness command line in-process with args, as main does, and
// returns what it printed and its exit code. Flags are reset afterwards, so runs do not
// leak into each other.
func runCLI(args ...string) cliResult {
	GinkgoHelper()
	var out, errOut bytes.Buffer
	rootCmd.SetArgs(args)
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	err := rootCmd.Execute()
	rootCmd.SetArgs(nil)
	rootCmd.SetOut(nil)
	rootCmd.SetErr(nil)
	resetFlags(rootCmd)

	code := exitOK
	if err != nil {
		var f failedError
		if errors.As(err, &f) {
			code = f.exitCode()
			if f.msg != "" {
				fmt.Fprintln(&errOut, f.msg)
			}
		} else {
			code = exitUsage
			fmt.Fprintln(&errOut, "syncharness:", err)
		}
	}
	return cliResult{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// resetFlags sets every flag of c and its subcommands back to its default.
func resetFlags(c *cobra.Command) {
	reset := func(f *pflag.Flag) {
		if r, ok := f.Value.(interface{ resetDefault() }); ok {
			r.resetDefault() // its default may be a value Set refuses
		} else if sv, ok := f.Value.(pflag.SliceValue); ok {
			Expect(sv.Replace(nil)).To(Succeed())
		} else {
			Expect(f.Value.Set(f.DefValue)).To(Succeed())
		}
		f.Changed = false
	}
	c.Flags().VisitAll(reset)
	c.PersistentFlags().VisitAll(reset)
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}

// tempDir makes a directory removed after the spec.
func tempDir() string {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "syncharness-cli-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	return dir
}

// writeFile writes a file under dir and returns its path.
func writeFile(dir, name, content string) string {
	GinkgoHelper()
	path := filepath.Join(dir, name)
	Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
	Expect(os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
	return path
}
