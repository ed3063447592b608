// Package harness runs scenarios: it starts a server (a Target), one device per scenario
// device behind a fault proxy, executes the scenario's steps, lets every device settle and
// checks the convergence invariants.
//
// A run of one scenario:
//
//  1. the target prepares a fresh server (the in-process fake server, seeded);
//  2. setup lines shape the server; every device gets its own proxy and store;
//  3. steps run in order (concurrently blocks at the same time), each recorded in the
//     history that the checker's expected-state model replays;
//  4. after the last step every device syncs, in turn, until a whole round changes nothing
//     (settle), then one more round proves idempotence;
//  5. the checker compares the server (read over IMAP), every device's view and the history.
//
// Engine authors run the catalogue against their own clients.Device by setting
// Options.NewDevice; see the package example.
package harness
