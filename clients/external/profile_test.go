package external_test

import (
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/external"
)

var _ = Describe("Engine profiles", func() {
	It("are built in for mbsync and OfflineIMAP, and load", func() {
		Expect(external.Builtin()).To(Equal([]string{"mbsync", "offlineimap"}))
		for _, name := range external.Builtin() {
			p, err := external.LoadBuiltin(name)
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(p.Name).To(Equal(name))
			Expect(p.Claims.Keywords).To(BeFalse(), "neither engine syncs arbitrary keywords")
		}
	})

	It("name the file and line of a syntax error, and refuse unknown keys", func() {
		_, err := external.Parse("my.toml", []byte("name = \"x\"\nbinary = \n"))
		Expect(err).To(MatchError(HavePrefix("my.toml:2: ")))
		_, err = external.Parse("my.toml", []byte("name = \"x\"\nbinary = \"x\"\ncommand = [\"x\"]\ncomand = 1\n[maildir]\nseparator = \"/\"\n"))
		Expect(err).To(MatchError(`my.toml: unknown key "comand"`))
	})

	It("give templates no way to the password, only to a file holding it", func() {
		p, err := external.Parse("my.toml", []byte("name = \"x\"\nbinary = \"true\"\ncommand = [\"x\", \"{{.Password}}\"]\n[maildir]\nseparator = \"/\"\n"))
		Expect(err).NotTo(HaveOccurred())
		_, err = external.New(external.Config{Name: "phone", Profile: p, Dial: noDial, Password: "secret", Dir: GinkgoT().TempDir()})
		Expect(err).To(MatchError(ContainSubstring("can't evaluate field Password")))
	})

	It("refuse a command that would carry the password", func() {
		p, err := external.Parse("my.toml", []byte("name = \"x\"\nbinary = \"true\"\ncommand = [\"x\", \"--user={{.User}}\"]\n[maildir]\nseparator = \"/\"\n"))
		Expect(err).NotTo(HaveOccurred())
		_, err = external.New(external.Config{Name: "phone", Profile: p, Dial: noDial, Username: "secret", Password: "secret", Dir: GinkgoT().TempDir()})
		Expect(err).To(MatchError(ContainSubstring("would hold the password")))
	})

	It("include the README's complete example, which loads as it is", func() {
		b, err := os.ReadFile("../../README.md")
		Expect(err).NotTo(HaveOccurred())
		_, rest, ok := strings.Cut(string(b), "```toml\n# myengine.toml\n")
		Expect(ok).To(BeTrue(), "README has the myengine.toml example")
		text, _, _ := strings.Cut(rest, "```")
		p, err := external.Parse("README.md", []byte(text))
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Name).To(Equal("myengine"))
	})
})
