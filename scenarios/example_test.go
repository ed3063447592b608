package scenarios_test

import (
	"fmt"

	"github.com/syncharness/syncharness/scenarios"
)

func ExampleParse() {
	src := `# The laptop archives a message the phone reads.
devices phone laptop
mailbox Archive
deliver INBOX m1
sync
phone read INBOX m1
laptop move INBOX m1 Archive
sync
expect server Archive m1 flags \Seen
`
	s, err := scenarios.Parse("move_read.scn", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Category, "-", s.Description)
	for _, st := range s.Steps {
		fmt.Printf("%d: actor=%q verb=%s\n", st.Line, st.Actor, st.Verb)
	}
	// Output:
	// move - The laptop archives a message the phone reads.
	// 2: actor="" verb=devices
	// 3: actor="" verb=mailbox
	// 4: actor="" verb=deliver
	// 5: actor="" verb=sync
	// 6: actor="phone" verb=read
	// 7: actor="laptop" verb=move
	// 8: actor="" verb=sync
	// 9: actor="" verb=expect
}

func ExampleParse_errors() {
	src := `devices phone laptop
mailbox Archive
deliver INBOX m1
phnoe read INBOX m1
laptop move INBOX m1 Arhive
laptop flag INBOX m2 \Important
`
	_, err := scenarios.Parse("typos.scn", []byte(src))
	fmt.Println(err)
	// Output:
	// typos.scn:4: read: unknown device "phnoe" (devices: phone laptop)
	// typos.scn:5: move: unknown mailbox "Arhive" (did you mean "Archive"?)
	// typos.scn:6: flag: not a flag: "\\Important" (system flags are \Seen \Answered \Flagged \Deleted \Draft; keywords have no backslash, e.g. $Forwarded)
}

func ExampleFormat() {
	src := "devices   phone\n\n\n  deliver inbox m1 flags=\\seen   # new mail\nrepeat 2\nphone sync\nend\n"
	s, err := scenarios.ParseSyntax("x.scn", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(scenarios.Format(s)))
	// Output:
	// devices phone
	//
	// deliver INBOX m1 flags=\Seen  # new mail
	// repeat 2
	//   phone sync
	// end
}
