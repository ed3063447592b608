package explore_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/scenarios"
)

// verbs collects "actor-class verb" of every step of scn ("device sync", "server drop",
// "flow concurrently"), and the sync options used.
func verbs(scn *scenarios.Scenario) map[string]bool {
	out := map[string]bool{}
	var walk func([]*scenarios.Step)
	walk = func(steps []*scenarios.Step) {
		for _, st := range steps {
			class := "flow"
			switch {
			case st.Actor == scenarios.ActorServer:
				class = "server"
			case st.Actor != "":
				class = "device"
			}
			out[class+" "+st.Verb] = true
			for k := range st.Options {
				out["option "+k] = true
			}
			if st.Expect != nil {
				out["expect "+st.Expect.Kind] = true
			}
			walk(st.Body)
		}
	}
	walk(scn.Steps)
	return out
}

var _ = Describe("Generated scenarios", func() {
	It("always pass the language's checks, with the requested devices and steps", func() {
		for i := range 200 {
			scn, err := explore.Generate(5, i, explore.GenOptions{Devices: 2 + i%3, Steps: 10 + i%25})
			Expect(err).NotTo(HaveOccurred())
			Expect(scn.Name).To(Equal(explore.RunName(5, i)))
			Expect(scn.Steps[0].Devices).To(HaveLen(2 + i%3))
			again, err := scenarios.Parse(scn.Name+".scn", scenarios.Format(scn))
			Expect(err).NotTo(HaveOccurred(), "the formatted scenario parses again")
			Expect(again.Steps).To(HaveLen(len(scn.Steps)))
		}
	})

	It("are the same for the same seed and run, and differ between runs", func() {
		a, err := explore.Generate(9, 3, explore.GenOptions{})
		Expect(err).NotTo(HaveOccurred())
		b, err := explore.Generate(9, 3, explore.GenOptions{})
		Expect(err).NotTo(HaveOccurred())
		c, err := explore.Generate(9, 4, explore.GenOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(string(a.Source)).To(Equal(string(b.Source)))
		Expect(string(a.Source)).NotTo(Equal(string(c.Source)))
	})

	It("cover the whole language over a few hundred runs", func() {
		seen := map[string]bool{}
		for i := range 300 {
			scn, err := explore.Generate(1, i, explore.GenOptions{})
			Expect(err).NotTo(HaveOccurred())
			for v := range verbs(scn) {
				seen[v] = true
			}
		}
		for _, v := range []string{
			"flow sync", "flow concurrently", "device sync", "device read", "device unread",
			"device flag", "device unflag", "device move", "device copy", "device delete",
			"device trash", "device append", "device reply", "device forward", "device create",
			"device rename", "device remove", "device offline", "device online", "device crash",
			"device wipe", "device drop", "device watch", "device unwatch", "server deliver",
			"server read", "server unread", "server flag", "server unflag", "server move",
			"server copy", "server expunge", "server create", "server rename", "server remove",
			"server uidvalidity-bump", "server uidvalidity-reset", "server drop", "server fail",
			"option interrupt-after", "option crash-after", "option lose-answer", "option crash-lose-answer",
			"option flags", "expect missing", "flow caps",
		} {
			Expect(seen).To(HaveKey(v))
		}
	})

	It("use only the faults they are allowed", func() {
		for i := range 100 {
			scn, err := explore.Generate(2, i, explore.GenOptions{Faults: []string{explore.FaultOffline}})
			Expect(err).NotTo(HaveOccurred())
			v := verbs(scn)
			for _, banned := range []string{"device crash", "device wipe", "device drop", "server drop",
				"server fail", "server uidvalidity-bump", "server uidvalidity-reset", "option crash-after",
				"option interrupt-after", "option lose-answer", "option crash-lose-answer", "device watch"} {
				Expect(v).NotTo(HaveKey(banned), string(scn.Source))
			}
			Expect(strings.Count(string(scn.Source), "\n")).To(BeNumerically(">", 30))
		}
	})
})

// mailboxNames collects every mailbox name scn's steps name.
func mailboxNames(scn *scenarios.Scenario) []string {
	var out []string
	var walk func([]*scenarios.Step)
	walk = func(steps []*scenarios.Step) {
		for _, st := range steps {
			switch st.Verb {
			case "mailbox", "create", "rename", "remove", "move", "copy", "deliver":
				out = append(out, st.Mailbox)
				if st.Dest != "" && st.Verb != "deliver" {
					out = append(out, st.Dest)
				}
			}
			walk(st.Body)
		}
	}
	walk(scn.Steps)
	return out
}

var _ = Describe("Generated mailbox names", func() {
	It("include names that differ only in case, names that are not ASCII and names with spaces, all of which format and parse back", func() {
		var caseOnly, nonASCII, spaced bool
		for i := range 300 {
			scn, err := explore.Generate(1, i, explore.GenOptions{})
			Expect(err).NotTo(HaveOccurred())
			names := mailboxNames(scn)
			lower := map[string]string{}
			for _, n := range names {
				if o, ok := lower[strings.ToLower(n)]; ok && o != n {
					caseOnly = true
				}
				lower[strings.ToLower(n)] = n
				for _, r := range n {
					if r > 127 {
						nonASCII = true
					}
				}
				if strings.Contains(n, " ") {
					spaced = true
				}
			}
			again, err := scenarios.Parse(scn.Name+".scn", scenarios.Format(scn))
			Expect(err).NotTo(HaveOccurred())
			Expect(mailboxNames(again)).To(Equal(names), string(scn.Source))
		}
		Expect(caseOnly).To(BeTrue(), "two names that differ only in case")
		Expect(nonASCII).To(BeTrue(), "a name that is not ASCII")
		Expect(spaced).To(BeTrue(), "a name with a space")
	})
})
