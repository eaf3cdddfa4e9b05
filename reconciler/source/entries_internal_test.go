package source

import "testing"

// TestEntriesLookup: a path is named by its own entry; a missing path is absent unless it
// lies under a symbolic link or a submodule, whose content cannot be named, as neither can
// a path that leaves the root.
func TestEntriesLookup(t *testing.T) {
	e := &Entries{root: Entry{Kind: EntryDir, ID: "root"}, paths: map[string]Entry{
		"apps":             {Kind: EntryDir, ID: "tree-apps"},
		"apps/a.yaml":      {Kind: EntryFile, ID: "100644 blob-a"},
		"apps/link":        {Kind: entryOpaque},
		"apps/link.yaml":   {Kind: entryOpaque},
		"vendor/submodule": {Kind: entryOpaque},
		"vendor":           {Kind: EntryDir, ID: "tree-vendor"},
		"apps/a.yaml.d/x":  {Kind: EntryFile, ID: "100644 blob-x"},
		"apps/a.yaml.d":    {Kind: EntryDir, ID: "tree-d"},
		"docs/README.md":   {Kind: EntryFile, ID: "100644 blob-r"},
		"docs":             {Kind: EntryDir, ID: "tree-docs"},
		"apps/nested/deep": {Kind: EntryDir, ID: "tree-deep"},
		"apps/nested":      {Kind: EntryDir, ID: "tree-nested"},
	}}
	for _, c := range []struct {
		path string
		want Entry
		ok   bool
	}{
		{".", Entry{Kind: EntryDir, ID: "root"}, true},
		{"", Entry{Kind: EntryDir, ID: "root"}, true},
		{"apps", Entry{Kind: EntryDir, ID: "tree-apps"}, true},
		{"apps/./a.yaml", Entry{Kind: EntryFile, ID: "100644 blob-a"}, true},
		{"apps/missing.yaml", Entry{Kind: EntryAbsent}, true},
		{"missing/deeper/x.yaml", Entry{Kind: EntryAbsent}, true},
		{"apps/a.yaml/under-a-file", Entry{Kind: EntryAbsent}, true},
		{"apps/nested/deep/gone", Entry{Kind: EntryAbsent}, true},
		{"apps/link", Entry{}, false},
		{"apps/link.yaml", Entry{}, false},
		{"apps/link/x.yaml", Entry{}, false},
		{"vendor/submodule/x", Entry{}, false},
		{"../outside", Entry{}, false},
		{"/etc/passwd", Entry{}, false},
	} {
		got, ok := e.Lookup(c.path)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Lookup(%q) = %+v, %t; want %+v, %t", c.path, got, ok, c.want, c.ok)
		}
	}
	if _, ok := (*Entries)(nil).Lookup("apps"); ok {
		t.Error("a nil Entries named a path")
	}
}
