package reports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/html"

	"github.com/syncharness/syncharness/reports"
)

func writeHTML(r *reports.Run) []byte {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(reports.WriteHTML(&b, r)).To(Succeed())
	return b.Bytes()
}

func parseHTML(b []byte) *html.Node {
	GinkgoHelper()
	doc, err := html.Parse(bytes.NewReader(b))
	Expect(err).NotTo(HaveOccurred())
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
}

// all returns the element nodes under n, in document order, for which match holds.
func all(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func byTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

func byClass(tag, class string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag && hasClass(n, class) }
}

func byID(id string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, "id") == id }
}

func one(n *html.Node, match func(*html.Node) bool) *html.Node {
	GinkgoHelper()
	found := all(n, match)
	Expect(found).To(HaveLen(1))
	return found[0]
}

// child returns n's first child element named tag.
func child(n *html.Node, tag string) *html.Node {
	GinkgoHelper()
	for c := range n.ChildNodes() {
		if c.Type == html.ElementNode && c.Data == tag {
			return c
		}
	}
	Fail("no <" + tag + "> in <" + n.Data + ">")
	return nil
}

// text is the text content of n with runs of white space made one space.
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteString(" ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func texts(nodes []*html.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, text(n))
	}
	return out
}

// outline is the structure of a report that the golden file pins: for each scenario its
// lanes, its timeline rows with their marks per lane, the diverged row, the diff table with
// its marked cells and the marked source lines. Wording and styling may change freely.
func outline(doc *html.Node) string {
	var b strings.Builder
	for _, sec := range all(doc, byTag("section")) {
		fmt.Fprintf(&b, "scenario %s [%s]\n", attr(sec, "id"), attr(sec, "class"))
		for _, li := range all(sec, byClass("ul", "failures")) {
			for _, item := range all(li, byTag("li")) {
				fmt.Fprintf(&b, "  failure %s\n", text(one(item, byClass("span", "inv"))))
			}
		}
		for _, tbl := range all(sec, byClass("table", "swim")) {
			var lanes []string
			for _, th := range all(tbl, byClass("th", "lane-h")) {
				lanes = append(lanes, attr(th, "data-lane"))
			}
			fmt.Fprintf(&b, "  lanes %s\n", strings.Join(lanes, " "))
			for _, tr := range all(tbl, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "id") != "" }) {
				fmt.Fprintf(&b, "  row line=%s class=%q", attr(tr, "data-line"), attr(tr, "class"))
				for _, td := range all(tr, byClass("td", "lane")) {
					var kinds []string
					for _, m := range all(td, func(n *html.Node) bool { return attr(n, "data-kind") != "" }) {
						kinds = append(kinds, attr(m, "data-kind")+map[bool]string{true: "!", false: ""}[hasClass(m, "bad")])
					}
					if len(kinds) > 0 {
						fmt.Fprintf(&b, " %s=%s", attr(td, "data-lane"), strings.Join(kinds, ","))
					}
				}
				if len(all(tr, byClass("details", "state"))) > 0 {
					b.WriteString(" state")
				}
				b.WriteString("\n")
			}
		}
		for _, tbl := range all(sec, byClass("table", "diff")) {
			fmt.Fprintf(&b, "  diff %s\n", strings.Join(texts(all(tbl, byTag("th"))), " | "))
			for _, tr := range all(one(tbl, byTag("tbody")), byTag("tr")) {
				var cells []string
				for _, td := range all(tr, byTag("td")) {
					c := text(td)
					if hasClass(td, "divergent") {
						c = "≠" + c
					}
					cells = append(cells, c)
				}
				fmt.Fprintf(&b, "  diffrow [%s] %s\n", attr(tr, "class"), strings.Join(cells, " | "))
			}
		}
		for _, li := range all(sec, func(n *html.Node) bool { return n.Data == "li" && (hasClass(n, "failing") || hasClass(n, "diverged")) }) {
			fmt.Fprintf(&b, "  source %s %s\n", attr(li, "class"), text(one(li, byClass("span", "n"))))
		}
	}
	return b.String()
}

// checkValid asserts that a page is well formed (every element closed in order), that its
// ids are unique and that it refers to nothing outside itself.
func checkValid(page []byte) {
	GinkgoHelper()
	void := map[string]bool{"meta": true, "input": true, "br": true, "hr": true, "img": true, "link": true, "wbr": true}
	z := html.NewTokenizer(bytes.NewReader(page))
	var stack []string
	ids := map[string]bool{}
	sawDoctype := false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			Expect(z.Err().Error()).To(Equal("EOF"))
			break
		}
		tok := z.Token()
		switch tt {
		case html.DoctypeToken:
			sawDoctype = true
		case html.StartTagToken, html.SelfClosingTagToken:
			for _, a := range tok.Attr {
				if a.Key == "id" {
					Expect(ids).NotTo(HaveKey(a.Val), "duplicate id %q", a.Val)
					ids[a.Val] = true
				}
				if a.Key == "src" || a.Key == "href" || a.Key == "action" || a.Key == "srcset" {
					Expect(a.Val).To(HavePrefix("#"), "<%s %s=%q> refers outside the page", tok.Data, a.Key, a.Val)
				}
			}
			Expect(tok.Data).NotTo(BeElementOf("link", "iframe", "img", "object", "embed"))
			if tt == html.StartTagToken && !void[tok.Data] {
				stack = append(stack, tok.Data)
			}
		case html.EndTagToken:
			Expect(stack).NotTo(BeEmpty(), "</%s> closes nothing", tok.Data)
			Expect(tok.Data).To(Equal(stack[len(stack)-1]), "</%s> closes <%s>", tok.Data, stack[len(stack)-1])
			stack = stack[:len(stack)-1]
		}
	}
	Expect(sawDoctype).To(BeTrue())
	Expect(stack).To(BeEmpty(), "elements left open")
	for _, bad := range []string{"@import", "url(", "http://", "https://", "fetch(", "XMLHttpRequest"} {
		Expect(string(page)).NotTo(ContainSubstring(bad))
	}
}

var _ = Describe("The HTML report", func() {
	var doc *html.Node
	var page []byte

	BeforeEach(func() {
		page = writeHTML(divergenceRun())
		doc = parseHTML(page)
	})

	It("is one well-formed page with unique ids that refers to nothing outside itself", func() {
		checkValid(page)
		checkValid(writeHTML(sampleRun()))
		Expect(all(doc, byTag("style"))).To(HaveLen(1))
		Expect(all(doc, byTag("script"))).To(HaveLen(1))
	})

	It("sums up the run: verdict, target, engine, store, seed, counts and duration", func() {
		h := text(one(doc, byClass("header", "run")))
		Expect(h).To(ContainSubstring("FAIL"))
		Expect(h).To(ContainSubstring("target fake"))
		Expect(h).To(ContainSubstring("engine syncharness-engine (broken: plain-expunge)"))
		Expect(h).To(ContainSubstring("store memory"))
		Expect(h).To(ContainSubstring("seed 1"))
		Expect(h).To(ContainSubstring("1 failed"))
		Expect(h).To(ContainSubstring("0 passed"))
		Expect(h).To(MatchRegexp(`duration \d+(\.\d+)?ms`))
	})

	It("draws a lane per device and one for the server", func() {
		tbl := one(doc, byID("s1-timeline"))
		var lanes []string
		for _, th := range all(tbl, byClass("th", "lane-h")) {
			lanes = append(lanes, attr(th, "data-lane"))
		}
		Expect(lanes).To(Equal([]string{"phone", "laptop", "server"}))
	})

	It("puts the syncs of one step side by side in their lanes, with their IMAP commands collapsed", func() {
		row := one(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-line") == "6" })
		for _, lane := range []string{"phone", "laptop"} {
			td := one(row, func(n *html.Node) bool { return n.Data == "td" && attr(n, "data-lane") == lane })
			d := one(td, byClass("details", "cmds"))
			Expect(attr(d, "data-kind")).To(Equal("sync"))
			Expect(d.Attr).NotTo(ContainElement(HaveField("Key", "open")))
			Expect(text(one(d, byTag("pre")))).To(ContainSubstring("C: T1 LOGIN " + lane + " ***"))
		}
		server := one(row, func(n *html.Node) bool { return n.Data == "td" && attr(n, "data-lane") == "server" })
		Expect(all(server, func(n *html.Node) bool { return attr(n, "data-kind") != "" })).To(BeEmpty())
	})

	It("highlights the first step after which the states diverged, in the timeline and the source", func() {
		rows := all(doc, byClass("tr", "diverged"))
		Expect(rows).To(HaveLen(1))
		Expect(attr(rows[0], "data-line")).To(Equal("10"))
		Expect(text(rows[0])).To(ContainSubstring("states diverged after this step"))
		src := one(doc, byClass("li", "diverged"))
		Expect(attr(src, "id")).To(Equal("s1-L10"))
		Expect(text(src)).To(ContainSubstring("phone sync"))
	})

	It("opens each lane's state after a step as a small table", func() {
		row := one(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-line") == "9" })
		box := one(row, byClass("details", "state"))
		Expect(texts(all(box, byTag("h4")))).To(Equal([]string{"phone", "laptop", "server"}))
		tables := all(box, byTag("table"))
		Expect(tables).To(HaveLen(3))
		Expect(text(tables[0])).To(Equal("mailbox label flags INBOX m2 no flags INBOX m3 no flags"))
		Expect(text(tables[2])).To(ContainSubstring(`INBOX m3 \Deleted`))
	})

	It("marks the failed checks in their lanes", func() {
		bad := all(one(doc, byID("s1-timeline")), func(n *html.Node) bool { return hasClass(n, "mark") && hasClass(n, "bad") })
		Expect(texts(bad)).To(Equal([]string{
			"✗ INBOX holds m2 m3 server INBOX holds m2, want m2 m3",
			`✗ m3 flags \Deleted server INBOX has no message m3`,
			"✗ INBOX holds m2 m3 laptop INBOX holds m2, want m2 m3",
		}))
	})

	It("shows the final state with a column per device and the server and marks the divergent cells", func() {
		tbl := one(doc, byID("s1-diff"))
		Expect(texts(all(tbl, byTag("th")))).To(Equal([]string{"mailbox", "label", "expected", "phone", "laptop", "server"}))
		div := all(tbl, byClass("td", "divergent"))
		Expect(div).To(HaveLen(3))
		for i, lane := range []string{"phone", "laptop", "server"} {
			Expect(attr(div[i], "data-lane")).To(Equal(lane))
			Expect(text(div[i])).To(Equal("absent"))
		}
		Expect(texts(all(tbl, byClass("tr", "divrow")))).To(Equal([]string{`INBOX m3 \Deleted absent absent absent`}))
	})

	It("states the failed guarantees in words above the diff table", func() {
		var order []string
		for n := range doc.Descendants() {
			if hasClass(n, "failures") || hasClass(n, "diff") {
				order = append(order, attr(n, "class"))
			}
		}
		Expect(order).To(Equal([]string{"failures", "grid diff"}))
		Expect(text(one(doc, byID("s1-failures")))).To(ContainSubstring("I3 no loss m3 is missing on the server (expected in INBOX)"))
	})

	It("shows the source with the failing lines marked, and the reproduce command", func() {
		var failing []string
		for _, li := range all(doc, byClass("li", "failing")) {
			failing = append(failing, attr(li, "id"))
		}
		Expect(failing).To(Equal([]string{"s1-L12", "s1-L13", "s1-L16"}))
		Expect(text(one(doc, byID("s1-L12")))).To(ContainSubstring("server INBOX holds m2, want m2 m3"))
		Expect(text(one(doc, byID("s1-repro")))).To(Equal("syncharness run --filter '^delete_keeps_others_deleted$' --seed 1"))
	})

	It("matches the golden structure", func() {
		got := outline(doc) + outline(parseHTML(writeHTML(sampleRun())))
		updateGolden("testdata/html_structure.golden.txt", []byte(got))
		golden, err := os.ReadFile("testdata/html_structure.golden.txt")
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(string(golden)))
	})

	It("renders a scenario without a timeline from its steps, with its failure tables and source", func() {
		d := parseHTML(writeHTML(sampleRun()))
		sec := one(d, func(n *html.Node) bool { return n.Data == "section" && hasClass(n, "failed") })
		Expect(texts(all(sec, byClass("th", "lane-h")))).To(Equal([]string{"phone", "laptop", "server"}))
		Expect(all(sec, byClass("table", "diff"))).To(BeEmpty())
		Expect(all(sec, byClass("tr", "diverged"))).To(BeEmpty())
		Expect(text(one(sec, byClass("table", "failure-table")))).To(ContainSubstring("m1 Work 1 1 1"))
		Expect(all(sec, byClass("ol", "source"))).To(HaveLen(1))
		laptop := one(sec, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-line") == "7" })
		Expect(text(laptop)).To(ContainSubstring("laptop: move: connection reset"))
	})

	It("lists failures first, then errors, then skipped and passed scenarios, all open to the filter", func() {
		d := parseHTML(writeHTML(sampleRun()))
		var order []string
		for _, n := range all(d, func(n *html.Node) bool { return attr(n, "data-filter") != "" }) {
			order = append(order, attr(n, "data-filter"))
		}
		Expect(order).To(Equal([]string{
			"move_concurrent_two_folders move failed",
			"crash_after_append crash error",
			"uidvalidity_reset_dovecot uidvalidity skipped",
			"flags_read_on_two_devices flags passed",
		}))
		Expect(one(d, byID("filter")).Data).To(Equal("input"))
	})

	It("folds the final state of a passed scenario into its line, closed until opened", func() {
		r := sampleRun()
		passed := r.Scenarios[0]
		Expect(passed.Status).To(Equal(reports.Passed))
		passed.FinalState = &reports.StateTable{
			Lanes:     []string{"phone", "laptop", reports.ServerLane},
			Mailboxes: [][]string{{"Archive", "INBOX"}, {"INBOX"}, {"Archive", "INBOX"}},
			Rows: []reports.StateTableRow{
				{Mailbox: "INBOX", Label: "m1", Expected: &reports.StateCell{Present: true, Flags: []string{`\Seen`}, OptionalFlags: []string{`\Flagged`}},
					Cells: []reports.StateCell{{Present: true, Flags: []string{`\Seen`}}, {Present: true, Flags: []string{`\Seen`, `\Flagged`}}, {Present: true, Flags: []string{`\Seen`}}}},
				{Mailbox: "INBOX", Label: "m2", Expected: &reports.StateCell{}, Cells: []reports.StateCell{{}, {}, {}}},
			},
		}
		// A second passed scenario that recorded no final state gets no fold.
		r.Scenarios = append(r.Scenarios, &reports.Scenario{Name: "flags_nothing_recorded", Category: "flags",
			Status: reports.Passed, Seed: 7, Duration: time.Millisecond})
		page := writeHTML(r)
		checkValid(page)
		d := parseHTML(page)

		row := one(d, func(n *html.Node) bool {
			return n.Data == "tr" && strings.HasPrefix(attr(n, "data-filter"), "flags_read_on_two_devices ")
		})
		fold := one(row, byClass("details", "final"))
		Expect(fold.Attr).NotTo(ContainElement(HaveField("Key", "open")), "the fold is open")
		Expect(text(child(fold, "summary"))).To(Equal("final state"))
		Expect(texts(all(fold, byTag("li")))).To(Equal([]string{
			"phone mailboxes: Archive INBOX", "laptop mailboxes: INBOX", "server mailboxes: Archive INBOX"}))
		tbl := one(fold, byClass("table", "diff"))
		Expect(texts(all(tbl, byTag("th")))).To(Equal([]string{"mailbox", "label", "expected", "phone", "laptop", "server"}))
		Expect(texts(all(one(tbl, byTag("tbody")), byTag("tr")))).To(Equal([]string{
			`INBOX m1 \Seen \Flagged or \Seen \Seen \Seen \Flagged \Seen`,
			"INBOX m2 absent absent absent absent",
		}))
		Expect(all(tbl, byClass("td", "divergent"))).To(BeEmpty())

		other := one(d, func(n *html.Node) bool {
			return n.Data == "tr" && strings.HasPrefix(attr(n, "data-filter"), "flags_nothing_recorded ")
		})
		Expect(all(other, byTag("details"))).To(BeEmpty())
		// The failed scenario's table stays open in its section, as before.
		Expect(all(one(d, byClass("section", "failed")), byClass("details", "final"))).To(BeEmpty())
	})

	It("says a passed scenario ended without messages rather than showing an empty table", func() {
		r := sampleRun()
		r.Scenarios[0].FinalState = &reports.StateTable{Lanes: []string{"phone", reports.ServerLane}, Mailboxes: [][]string{{"INBOX"}, {}}}
		d := parseHTML(writeHTML(r))
		fold := one(d, byClass("details", "final"))
		Expect(texts(all(fold, byTag("li")))).To(Equal([]string{"phone mailboxes: INBOX", "server mailboxes: none"}))
		note := one(fold, byClass("td", "note"))
		Expect(text(note)).To(Equal("no messages"))
		Expect(attr(note, "colspan")).To(Equal("4"))
	})

	It("marks faults in the lane they hit and gives harness rounds rows of their own, with their states", func() {
		run := divergenceRun()
		s := run.Scenarios[0]
		s.Timeline = append(s.Timeline,
			reports.TimelineEvent{Time: ms(24.65), Lane: reports.ServerLane, Kind: reports.EventFault, Line: 8, Text: "UIDVALIDITY reset of INBOX"},
			reports.TimelineEvent{Time: ms(40), Lane: "phone", Kind: reports.EventFault, Text: "crash"},
			reports.TimelineEvent{Time: ms(41), Lane: "phone", Kind: reports.EventSync, Text: "settle round 1"},
			reports.TimelineEvent{Time: ms(42), Lane: "laptop", Kind: reports.EventSync, Text: "settle round 1"},
		)
		s.States = append(s.States, reports.StateSnapshot{Step: "crash", Lanes: []reports.LaneState{{Lane: "phone"}}})
		d := parseHTML(writeHTML(run))
		row8 := one(d, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-line") == "8" })
		server := one(row8, func(n *html.Node) bool { return n.Data == "td" && attr(n, "data-lane") == "server" })
		Expect(texts(all(server, func(n *html.Node) bool { return attr(n, "data-kind") != "" }))).To(Equal([]string{
			`• flag m3 \Deleted`, "⚡ UIDVALIDITY reset of INBOX"}))
		Expect(all(server, byClass("span", "fault"))).To(HaveLen(1))
		tbody := child(one(d, byID("s1-timeline")), "tbody")
		var rows []*html.Node
		for c := range tbody.ChildNodes() {
			if c.Type == html.ElementNode {
				rows = append(rows, c)
			}
		}
		Expect(len(rows)).To(BeNumerically(">", 2))
		last := rows[len(rows)-2:]
		Expect(texts(last)).To(Equal([]string{
			"+40ms crash ⚡ crash state phone mailbox label flags no messages",
			"+41ms settle round 1 ⇅ settle round 1 ⇅ settle round 1"}))
		for i, lane := range []string{"phone", "laptop"} {
			td := one(last[1], func(n *html.Node) bool { return n.Data == "td" && attr(n, "data-lane") == lane })
			Expect(attr(one(td, byClass("span", "mark")), "id")).To(Equal(fmt.Sprintf("s1-e%d", 18+i)))
		}
		for _, r := range last {
			Expect(r.Attr).NotTo(ContainElement(HaveField("Key", "data-line")))
		}
	})

	It("caps a long sync round and says how many lines it left out", func() {
		run := divergenceRun()
		var lines []reports.TranscriptLine
		for i := range 500 {
			lines = append(lines, reports.TranscriptLine{Device: "phone", Time: ms(2), Dir: "S", Text: fmt.Sprintf("* %d FETCH (UID %d FLAGS ())", i+1, i+1)})
		}
		run.Scenarios[0].Timeline[2].Commands = lines
		run.Scenarios[0].Timeline[2].CommandsOmitted = 7
		d := parseHTML(writeHTML(run))
		det := one(d, byID("s1-e3"))
		Expect(strings.Count(text(one(det, byTag("pre"))), "FETCH")).To(Equal(reports.HTMLMaxCommands))
		Expect(text(one(det, byClass("div", "note")))).To(HavePrefix(fmt.Sprintf("… %d more lines not shown", 500-reports.HTMLMaxCommands+7)))
	})

	It("escapes whatever a scenario or a server wrote", func() {
		run := divergenceRun()
		run.Scenarios[0].Name = `<script>alert(1)</script>`
		run.Scenarios[0].Timeline[6].Commands[0].Text = `<img src=x onerror=alert(1)>`
		out := writeHTML(run)
		checkValid(out)
		d := parseHTML(out)
		Expect(all(d, byTag("script"))).To(HaveLen(1))
		Expect(all(d, byTag("img"))).To(BeEmpty())
	})

	It("refuses a run the model cannot hold", func() {
		run := divergenceRun()
		run.Scenarios[0].Timeline[2].Commands[0].Dir = "X"
		Expect(reports.WriteHTML(&bytes.Buffer{}, run)).To(MatchError(ContainSubstring(`direction "X"`)))
		Expect(reports.WriteHTML(&bytes.Buffer{}, nil)).To(MatchError(ContainSubstring("nil run")))
	})

	It("keeps a 200-scenario run under 5 MB", func() {
		run := largeRun(200, 40)
		out := writeHTML(run)
		GinkgoWriter.Printf("200 scenarios, 40 failed with timelines: %d bytes\n", len(out))
		Expect(len(out)).To(BeNumerically("<", 5<<20))
		checkValid(out)
	})

	It("is written into every report directory", func() {
		dir := filepath.Join(GinkgoT().TempDir(), "report")
		Expect(reports.WriteDir(dir, divergenceRun(), reports.Artifacts{})).To(Succeed())
		b, err := os.ReadFile(filepath.Join(dir, reports.HTMLFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(Equal(page))
	})
})

var _ = Describe("The timeline in JSON", func() {
	It("reads back exactly the timeline, states and final state that were written", func() {
		run := divergenceRun()
		back := readJSON(writeJSON(run))
		Expect(back).To(Equal(run))
		Expect(writeJSON(back)).To(Equal(writeJSON(run)))
	})

	It("documents every field it writes in docs/report-json.md", func() {
		doc, err := os.ReadFile("../docs/report-json.md")
		Expect(err).NotTo(HaveOccurred())
		var v any
		Expect(json.Unmarshal(writeJSON(divergenceRun()), &v)).To(Succeed())
		for _, key := range jsonKeys(v, nil) {
			Expect(string(doc)).To(ContainSubstring("`"+key+"`"), "docs/report-json.md does not document %q", key)
		}
	})

	It("leaves the timeline fields out when the runner did not record them", func() {
		out := string(writeJSON(sampleRun()))
		for _, key := range []string{"timeline", "diverged_at", "states", "final_state"} {
			Expect(out).NotTo(ContainSubstring(`"` + key + `"`))
		}
	})
})

// largeRun is a catalogue-sized run: n scenarios of which failed have the whole timeline
// of divergenceRun, with sync rounds of 400 lines.
func largeRun(n, failed int) *reports.Run {
	base := divergenceRun()
	tmpl := base.Scenarios[0]
	run := &reports.Run{SchemaVersion: 1, Target: "fake", Engine: "syncharness-engine", Store: "memory", Seed: 1, Duration: time.Minute}
	var long []reports.TranscriptLine
	for i := range 400 {
		long = append(long, reports.TranscriptLine{Device: "phone", Time: ms(3), Dir: "S", Text: fmt.Sprintf("* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE 2048)", i+1, i+1)})
	}
	for i := range n {
		if i < failed {
			s := readJSON(writeJSON(base)).Scenarios[0]
			s.Name = fmt.Sprintf("%s_%03d", tmpl.Name, i)
			for j := range s.Timeline {
				if s.Timeline[j].Kind == reports.EventSync {
					s.Timeline[j].Commands = long
				}
			}
			s.Transcript = long
			run.Scenarios = append(run.Scenarios, s)
			continue
		}
		run.Scenarios = append(run.Scenarios, &reports.Scenario{
			Name: fmt.Sprintf("flags_scenario_%03d", i), Category: "flags", Status: reports.Passed, Seed: 1,
			Description: "A flag set on one device reaches every other device.", Duration: 30 * time.Millisecond,
			Devices: []string{"phone", "laptop"}})
	}
	return run
}

// headless runs chromium headless on page with a fresh profile and returns its standard
// output; it fails the spec after 90 seconds.
func headless(chromium, page string, extra ...string) []byte {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + GinkgoT().TempDir(), "--window-size=1400,1800"}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "chromium: %s", stderr.String())
	return out
}

var _ = Describe("The HTML report in a browser", Label("browser"), func() {
	var chromium, dir string

	BeforeEach(func() {
		var err error
		chromium, err = exec.LookPath("chromium")
		if err != nil {
			Skip("chromium is not installed (.ci/run installs Debian's chromium): the browser checks of the HTML report did not run")
		}
		dir = GinkgoT().TempDir()
	})

	It("shows the lanes, the highlighted divergence and the diff table once its script ran", func() {
		page := filepath.Join(dir, "report.html")
		Expect(os.WriteFile(page, writeHTML(divergenceRun()), 0o644)).To(Succeed())
		d := parseHTML(headless(chromium, page, "--dump-dom"))
		Expect(attr(one(d, byTag("body")), "data-ready")).To(Equal("true"), "the page's script did not run")
		Expect(text(one(d, byID("shown")))).To(Equal("1 of 1 scenarios shown"))
		Expect(texts(all(one(d, byID("s1-timeline")), byClass("th", "lane-h")))).To(Equal([]string{"phone", "laptop", "server"}))
		Expect(all(d, byClass("tr", "diverged"))).To(HaveLen(1))
		Expect(all(one(d, byID("s1-diff")), byClass("td", "divergent"))).To(HaveLen(3))

		shot := filepath.Join(dir, "report.png")
		headless(chromium, page, "--screenshot="+shot, "--virtual-time-budget=2000")
		info, err := os.Stat(shot)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Size()).To(BeNumerically(">", 10_000))
		if out := os.Getenv("SYNCHARNESS_SCREENSHOT"); out != "" {
			b, err := os.ReadFile(shot)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(out, b, 0o644)).To(Succeed())
		}
	})

	It("opens a 200-scenario report and runs its filter over every scenario", func() {
		page := filepath.Join(dir, "large.html")
		Expect(os.WriteFile(page, writeHTML(largeRun(200, 40)), 0o644)).To(Succeed())
		start := time.Now()
		d := parseHTML(headless(chromium, page, "--dump-dom"))
		GinkgoWriter.Printf("chromium loaded the 200-scenario report in %v, start-up included\n", time.Since(start))
		Expect(text(one(d, byID("shown")))).To(Equal("200 of 200 scenarios shown"))
		Expect(all(d, byClass("table", "swim"))).To(HaveLen(40))
	})
})

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// divergenceRun is a real failure (testdata/html_failure_run.json, written by
// "syncharness run --broken-engine plain-expunge --filter delete_keeps_others_deleted")
// with the timeline, the states and the final state filled in by hand from its steps,
// transcript and source, as the runner is to fill them.
func divergenceRun() *reports.Run {
	f, err := os.Open("testdata/html_failure_run.json")
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	run, err := reports.ReadJSON(f)
	Expect(err).NotTo(HaveOccurred())
	s := run.Scenarios[0]
	tr := s.Transcript

	cmds := func(dev string, lines ...string) []reports.TranscriptLine {
		var out []reports.TranscriptLine
		for i, l := range lines {
			out = append(out, reports.TranscriptLine{Device: dev, Time: ms(1.5 + float64(i)*0.1), Dir: l[:1], Text: l[3:]})
		}
		return out
	}
	initial := func(dev string) []reports.TranscriptLine {
		return cmds(dev, "C: T1 LOGIN "+dev+" ***", "S: T1 OK LOGIN completed",
			`C: T2 LIST "" "*" RETURN (SPECIAL-USE)`, `S: * LIST (\HasNoChildren) "/" INBOX`, "S: T2 OK LIST completed",
			"C: T3 SELECT INBOX", "S: * 3 EXISTS", "S: T3 OK [READ-WRITE] SELECT completed",
			"C: T4 UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])", "S: * 1 FETCH (UID 1 FLAGS () …)",
			"S: * 2 FETCH (UID 2 FLAGS () …)", "S: * 3 FETCH (UID 3 FLAGS () …)", "S: T4 OK UID FETCH completed")
	}
	const dev, lap, srv = "phone", "laptop", reports.ServerLane
	s.Timeline = []reports.TimelineEvent{
		{Time: ms(0.67), Duration: ms(0.66), Kind: reports.EventStep, Line: 4, Text: "devices phone laptop"},
		{Time: ms(1.34), Duration: ms(0.06), Lane: srv, Kind: reports.EventStep, Line: 5, Text: "deliver m1 m2 m3 to INBOX"},
		{Time: ms(1.40), Duration: ms(11.2), Lane: dev, Kind: reports.EventSync, Line: 6, Text: "sync", Commands: initial(dev)},
		{Time: ms(12.7), Duration: ms(11.9), Lane: lap, Kind: reports.EventSync, Line: 6, Text: "sync", Commands: initial(lap)},
		{Time: ms(24.64), Duration: ms(0.01), Lane: srv, Kind: reports.EventStep, Line: 8, Text: `flag m3 \Deleted`},
		{Time: ms(24.66), Duration: ms(0.01), Lane: dev, Kind: reports.EventStep, Line: 9, Text: "delete m1 (offline journal)"},
		{Time: ms(24.67), Duration: ms(1.02), Lane: dev, Kind: reports.EventSync, Line: 10, Text: "sync", Commands: tr[:33]},
		{Time: ms(25.14), Lane: srv, Kind: reports.EventStep, Line: 10, Text: "EXPUNGE removes m1 and m3"},
		{Time: ms(25.70), Duration: ms(0.56), Lane: srv, Kind: reports.EventExpect, Line: 12, Text: "INBOX holds m2 m3",
			Error: "server INBOX holds m2, want m2 m3"},
		{Time: ms(26.26), Duration: ms(0.45), Lane: srv, Kind: reports.EventExpect, Line: 13, Text: `m3 flags \Deleted`,
			Error: "server INBOX has no message m3"},
		{Time: ms(26.72), Duration: ms(4.19), Kind: reports.EventExpect, Line: 14, Text: "expect converged"},
		{Time: ms(26.73), Duration: ms(0.7), Lane: dev, Kind: reports.EventSync, Line: 14, Text: "settle sync", Commands: tr[33:]},
		{Time: ms(27.5), Duration: ms(2.9), Lane: lap, Kind: reports.EventSync, Line: 14, Text: "settle sync",
			Commands: cmds(lap, "C: T5 NOOP", "S: * 2 EXPUNGE", "S: * 1 EXPUNGE", "S: T5 OK NOOP completed")},
		{Time: ms(30.96), Duration: ms(1.1), Kind: reports.EventExpect, Line: 15, Text: "expect missing m1"},
		{Time: ms(32.06), Duration: ms(0.01), Lane: lap, Kind: reports.EventExpect, Line: 16, Text: "INBOX holds m2 m3",
			Error: "laptop INBOX holds m2, want m2 m3"},
	}
	s.DivergedAt = 10

	msgs := func(labels ...string) []reports.MessageState {
		var out []reports.MessageState
		for _, l := range labels {
			m := reports.MessageState{Mailbox: "INBOX", Label: l}
			if l == "m3*" {
				m.Label, m.Flags = "m3", []string{`\Deleted`}
			}
			out = append(out, m)
		}
		return out
	}
	state := func(line int, step string, phone, laptop, server []reports.MessageState) reports.StateSnapshot {
		return reports.StateSnapshot{Line: line, Step: step, Lanes: []reports.LaneState{
			{Lane: dev, Messages: phone}, {Lane: lap, Messages: laptop}, {Lane: srv, Messages: server}}}
	}
	all := msgs("m1", "m2", "m3")
	s.States = []reports.StateSnapshot{
		state(5, "deliver INBOX m1 m2 m3", nil, nil, all),
		state(6, "sync", all, all, all),
		state(8, `server flag INBOX m3 \Deleted`, all, all, msgs("m1", "m2", "m3*")),
		state(9, "phone delete INBOX m1", msgs("m2", "m3"), all, msgs("m1", "m2", "m3*")),
		state(10, "phone sync", msgs("m2"), all, msgs("m2")),
		state(14, "expect converged", msgs("m2"), msgs("m2"), msgs("m2")),
	}
	present := func(flags ...string) reports.StateCell { return reports.StateCell{Present: true, Flags: flags} }
	lost := reports.StateCell{Divergent: true}
	s.FinalState = &reports.StateTable{
		Lanes: []string{dev, lap, srv},
		Rows: []reports.StateTableRow{
			{Mailbox: "INBOX", Label: "m1", Expected: &reports.StateCell{}, Cells: []reports.StateCell{{}, {}, {}}},
			{Mailbox: "INBOX", Label: "m2", Expected: &reports.StateCell{Present: true},
				Cells: []reports.StateCell{present(), present(), present()}},
			{Mailbox: "INBOX", Label: "m3", Expected: &reports.StateCell{Present: true, Flags: []string{`\Deleted`}},
				Cells: []reports.StateCell{lost, lost, lost}},
		},
	}
	return run
}

// BenchmarkWriteHTML renders a catalogue-sized run: 200 scenarios, 40 of them failed with
// a whole timeline and long sync rounds.
func BenchmarkWriteHTML(b *testing.B) {
	RegisterTestingT(b)
	r := largeRun(200, 40)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := reports.WriteHTML(&buf, r); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size)/(1<<20), "MB/report")
}
