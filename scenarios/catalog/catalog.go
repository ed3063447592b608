// Package catalog is the built-in conformance catalogue of syncharness: scenario files
// (*.scn) that each pin one sync guarantee, named by category prefix (flags_, move_,
// delete_, folder_, uidvalidity_, offline_, crash_, network_, identity_, push_).
//
// The files are embedded in the binary, so `syncharness run` with no argument runs them,
// and engine authors can run them from their own tests. Each file starts with a comment
// line saying what it shows; README.md lists them with the failure they guard against.
package catalog

import "embed"

// FS holds every scenario file of the catalogue at its root, as "flags_concurrent_read.scn"
// and so on. It is read-only.
//
//go:embed *.scn
var FS embed.FS
