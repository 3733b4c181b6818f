// Package licence tells which licence a Go module's licence files grant, so that CI can refuse a
// module that is not under an open-source licence. It reads only text; finding the modules and
// their files is the caller's (cmd/licencecheck).
package licence

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A Licence is one licence recognised in a file, with whether it is open source.
type Licence struct {
	Name string // SPDX-like short name: "MPL-2.0", "BUSL-1.1", …
	Open bool   // an open-source licence this project may depend on
}

// marker is a phrase that identifies a licence in its text (compared after folding case and
// whitespace). The refused ones come first: a file that names the Business Source License and
// quotes the MPL as its change licence is BUSL. A weak marker counts only when no other marker
// matched: the MPL 2.0 names the GPL, LGPL and AGPL in its body as "Secondary Licenses", which
// does not put an MPL module under them (and a module offered under MIT or the AGPL may be used
// under MIT).
type marker struct {
	phrase  string
	licence Licence
	weak    bool
}

var markers = []marker{
	{"business source license", Licence{"BUSL-1.1", false}, false},
	{"server side public license", Licence{"SSPL", false}, false},
	{"elastic license", Licence{"Elastic", false}, false},
	{"commons clause", Licence{"Commons-Clause", false}, false},
	{"gnu affero general public license", Licence{"AGPL", false}, true}, // this project's policy: no AGPL dependency
	{"mozilla public license", Licence{"MPL-2.0", true}, false},
	{"apache license", Licence{"Apache-2.0", true}, false},
	{"licensed under the apache license", Licence{"Apache-2.0", true}, false},
	{"permission is hereby granted, free of charge", Licence{"MIT", true}, false},
	{"redistribution and use in source and binary forms", Licence{"BSD", true}, false},
	{"permission to use, copy, modify, and/or distribute this software for any purpose", Licence{"ISC", true}, false},
	{"permission to use, copy, modify, and distribute this software for any purpose", Licence{"ISC", true}, false},
	{"this is free and unencumbered software released into the public domain", Licence{"Unlicense", true}, false},
	{"creative commons legal code cc0", Licence{"CC0-1.0", true}, false},
	{"cc0 1.0 universal", Licence{"CC0-1.0", true}, false},
	{"creativecommons.org/publicdomain/zero", Licence{"CC0-1.0", true}, false},
	// A free-culture licence (any use, with attribution); gonum's plot draws SVG with a module under it.
	{"creative commons attribution 4.0 international public license", Licence{"CC-BY-4.0", true}, false},
	{"gnu lesser general public license", Licence{"LGPL", true}, true},
	{"gnu general public license", Licence{"GPL", true}, true},
	{"eclipse public license", Licence{"EPL", true}, false},
	{"this software is provided 'as-is', without any express or implied", Licence{"Zlib", true}, false},
	{"do what the fuck you want to public license", Licence{"WTFPL", true}, false},
	{"boost software license", Licence{"BSL-1.0", true}, false},
}

var space = regexp.MustCompile(`[\s*#>]+`)

// fold lower-cases text and turns every run of white space (and comment or quote marks) into
// one space, so that a phrase matches however its file wraps it.
func fold(text string) string {
	return strings.TrimSpace(space.ReplaceAllString(strings.ToLower(text), " "))
}

// Classify returns the licences a licence file's text grants, refused ones first; none when it
// names no licence it knows.
func Classify(text string) []Licence {
	t := fold(text)
	var out []Licence
	seen := map[string]bool{}
	var weak []Licence
	for _, m := range markers {
		if seen[m.licence.Name] || !strings.Contains(t, m.phrase) {
			continue
		}
		seen[m.licence.Name] = true
		if m.weak {
			weak = append(weak, m.licence)
		} else {
			out = append(out, m.licence)
		}
	}
	if len(out) == 0 {
		return weak
	}
	return out
}

// IsLicenceFile reports whether a file name in a module's root is a licence file.
func IsLicenceFile(name string) bool {
	n := strings.ToUpper(name)
	for _, p := range []string{"LICENSE", "LICENCE", "COPYING", "UNLICENSE", "MIT-LICENSE", "COPYRIGHT"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// Verdict is what a module's licence files grant.
type Verdict struct {
	Files    []string  // the licence files read, relative to the module's root
	Licences []Licence // every licence they name
	Problem  string    // "" when the module may be used; else why not
}

// Module reads the licence files in the root of a module's directory (dir, as `go mod download
// -json` reports it) and judges them: a module is refused when it has no licence file, when a
// file names a licence that is not open source, or when no file names a licence this package
// knows (a person must read it and, if it is open source, teach this package its wording).
func Module(dir string) Verdict {
	var v Verdict
	entries, err := os.ReadDir(dir)
	if err != nil {
		v.Problem = "cannot read the module: " + err.Error()
		return v
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !IsLicenceFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			v.Problem = "cannot read " + e.Name() + ": " + err.Error()
			return v
		}
		v.Files = append(v.Files, e.Name())
		for _, l := range Classify(string(b)) {
			if !seen[l.Name] {
				seen[l.Name] = true
				v.Licences = append(v.Licences, l)
			}
		}
	}
	sort.Strings(v.Files)
	switch {
	case len(v.Files) == 0:
		v.Problem = "no licence file"
	case len(v.Licences) == 0:
		v.Problem = "no licence recognised in " + strings.Join(v.Files, ", ")
	default:
		for _, l := range v.Licences {
			if !l.Open {
				v.Problem = l.Name + " is not an open-source licence (" + strings.Join(v.Files, ", ") + ")"
				break
			}
		}
	}
	return v
}
