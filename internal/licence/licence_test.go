package licence

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mplExcerpt = `Mozilla Public License Version 2.0
==================================

1.12. "Secondary License"
    means either the GNU General Public License, Version 2.0, the GNU Lesser
    General Public License, Version 2.1, the GNU Affero General Public
    License, Version 3.0, or any later versions of those licenses.`

const buslExcerpt = `License text copyright (c) 2020 MariaDB Corporation Ab, All Rights Reserved.
"Business Source License" is a trademark of MariaDB Corporation Ab.

Parameters

Licensor:             HashiCorp, Inc.
Licensed Work:        Consul Version 1.17.0 or later.
Change License:       Mozilla Public License, version 2.0`

const mitExcerpt = `The MIT License (MIT)

Copyright (c) 2014 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal`

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       string // first licence's name, "" for none
		open       bool
	}{
		{"MPL naming the AGPL as a secondary licence", mplExcerpt, "MPL-2.0", true},
		{"BUSL with the MPL as change licence", buslExcerpt, "BUSL-1.1", false},
		{"MIT wrapped and indented", mitExcerpt, "MIT", true},
		{"AGPL by its title", "GNU AFFERO GENERAL PUBLIC LICENSE\n   Version 3, 19 November 2007", "AGPL", false},
		{"SSPL", "Server Side Public License\nVERSION 1, OCTOBER 16, 2018", "SSPL", false},
		{"all rights reserved", "Copyright 2020 ACME. All rights reserved.", "", false},
	} {
		got := Classify(tc.text)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: got %v, want nothing recognised", tc.name, got)
		case tc.want != "" && (len(got) == 0 || got[0].Name != tc.want || got[0].Open != tc.open):
			t.Errorf("%s: got %v, want %s first (open %v)", tc.name, got, tc.want, tc.open)
		}
	}
}

func TestModule(t *testing.T) {
	mod := func(files map[string]string) string {
		dir := t.TempDir()
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, tc := range []struct {
		name    string
		files   map[string]string
		problem string // substring of the problem, "" when the module passes
	}{
		{"MPL module", map[string]string{"LICENSE": mplExcerpt, "go.mod": "module x"}, ""},
		{"MIT in LICENSE.md", map[string]string{"LICENSE.md": mitExcerpt}, ""},
		{"BUSL module", map[string]string{"LICENSE": buslExcerpt}, "BUSL-1.1 is not an open-source licence (LICENSE)"},
		{"MIT file beside a BUSL file", map[string]string{"LICENSE": mitExcerpt, "LICENSE-ENTERPRISE": buslExcerpt}, "BUSL-1.1"},
		{"no licence file", map[string]string{"README.md": mitExcerpt}, "no licence file"},
		{"unknown wording", map[string]string{"COPYING": "All rights reserved."}, "no licence recognised in COPYING"},
	} {
		v := Module(mod(tc.files))
		if (tc.problem == "") != (v.Problem == "") || !strings.Contains(v.Problem, tc.problem) {
			t.Errorf("%s: problem %q, want %q", tc.name, v.Problem, tc.problem)
		}
	}
}
