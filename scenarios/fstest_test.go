package scenarios_test

import (
	"io/fs"
	"testing/fstest"
)

// fstestMap builds an in-memory file system from file contents.
type fstestMap map[string]string

func (m fstestMap) fs() fs.FS {
	fsys := fstest.MapFS{}
	for name, data := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}
