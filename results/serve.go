package results

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
)

// Verdicts of runs in the index: those of results.json, and incomplete when it is missing.
const (
	VerdictValid      = "valid"
	VerdictInvalid    = "invalid"
	VerdictUnknown    = "unknown"
	VerdictIncomplete = "incomplete"
)

// maxIndexRows bounds the index page; filters reach older runs.
const maxIndexRows = 1000

// Run is one run folder as the index lists it.
type Run struct {
	Test    string
	Name    string    // the folder name, <YYYYMMDDTHHMMSS>[-N]
	Start   time.Time // parsed from Name; zero when it does not parse
	Verdict string    // VerdictValid, VerdictInvalid, VerdictUnknown or VerdictIncomplete
	Report  bool      // report.html exists
	Target  string    // what the run tested, from test.json (see TestInfo.TargetLabel)
}

// Path is the run folder relative to the store, with slashes.
func (r Run) Path() string { return r.Test + "/" + r.Name }

// ListRuns walks <store>/<test>/<run>/ (not following symlinks such as latest) and returns the
// runs newest first, reading only the "valid" field of each results.json.
func ListRuns(store string) ([]Run, error) {
	root, err := os.OpenRoot(store)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer root.Close()
	fsys := root.FS()
	tests, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read store: %w", err)
	}
	var runs []Run
	for _, t := range tests {
		if !t.IsDir() || ValidTestName(t.Name()) != nil {
			continue
		}
		entries, err := fs.ReadDir(fsys, t.Name())
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || ValidTestName(e.Name()) != nil {
				continue
			}
			r := Run{Test: t.Name(), Name: e.Name(), Verdict: readVerdict(fsys, t.Name()+"/"+e.Name()+"/"+ResultsFile),
				Target: readTarget(fsys, t.Name()+"/"+e.Name()+"/"+TestFile)}
			stamp, _, _ := strings.Cut(e.Name(), "-")
			r.Start, _ = time.Parse(timeLayout, stamp)
			if st, err := fs.Stat(fsys, r.Path()+"/"+ReportFile); err == nil && st.Mode().IsRegular() {
				r.Report = true
			}
			runs = append(runs, r)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if runs[i].Name != runs[j].Name {
			return runs[i].Name > runs[j].Name
		}
		return runs[i].Test < runs[j].Test
	})
	return runs, nil
}

// readVerdict reads the top-level "valid" of a results.json without decoding the rest into
// memory; a missing or unreadable file is incomplete.
// readTarget is the target label of the run's test.json ("" when it cannot be read).
func readTarget(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil || len(b) > 1<<20 {
		return ""
	}
	var t TestInfo
	if json.Unmarshal(b, &t) != nil {
		return ""
	}
	return t.TargetLabel()
}

func readVerdict(fsys fs.FS, name string) string {
	f, err := fsys.Open(name)
	if err != nil {
		return VerdictIncomplete
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return VerdictIncomplete
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return VerdictIncomplete
		}
		if key == "valid" {
			var v checker.Validity
			if dec.Decode(&v) != nil {
				return VerdictUnknown
			}
			c, _ := verdictClass(v)
			return c
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return VerdictIncomplete
		}
	}
	return VerdictIncomplete
}

// NewServer returns the handler of `harness serve`: an index of the runs in store at /, the
// files of the store under /runs/<path> and a zip of a run folder at /zip/<test>/<run>.zip.
// Paths are checked segment by segment (letters, digits, '.', '_', '-'; no '..', no hidden
// files) and opened through an os.Root, so nothing outside the store is served, also not
// through symlinks; links inside the store, such as latest, are followed.
func NewServer(store string) http.Handler {
	return &server{store: store}
}

type server struct{ store string }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	p := r.URL.Path
	switch {
	case p == "/":
		s.index(w, r)
	case p == "/runs":
		http.Redirect(w, r, "/runs/", http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/runs/"):
		s.file(w, r, strings.TrimPrefix(p, "/runs/"))
	case strings.HasPrefix(p, "/zip/") && strings.HasSuffix(p, ".zip"):
		s.zip(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/zip/"), ".zip"))
	default:
		http.NotFound(w, r)
	}
}

// cleanRel checks a slash path relative to the store; "" is the store itself.
func cleanRel(rel string) (string, bool) {
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		return ".", true
	}
	for _, seg := range strings.Split(rel, "/") {
		if ValidTestName(seg) != nil {
			return "", false
		}
	}
	return rel, true
}

func (s *server) file(w http.ResponseWriter, r *http.Request, rel string) {
	name, ok := cleanRel(rel)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	root, err := os.OpenRoot(s.store)
	if err != nil {
		http.Error(w, "store not readable", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	f, err := root.Open(name) // refuses symlinks that leave the store
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if st.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.Redirect(w, r, path.Base(r.URL.Path)+"/", http.StatusMovedPermanently)
			return
		}
		s.listing(w, root, name)
		return
	}
	if !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	base := path.Base(name)
	switch {
	case base == ReportFile:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
	case strings.HasSuffix(base, ".html"):
		// porcupine's visualisation runs its own script: let it, in an opaque origin.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
	case strings.HasSuffix(base, ".json"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	case strings.HasSuffix(base, ".svg"), strings.HasSuffix(base, ".png"):
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	}
	http.ServeContent(w, r, base, st.ModTime(), f)
}

type listingEntry struct {
	Name string
	Dir  bool
	Size int64
}

// listing shows a folder of the store: its visible entries, with links.
func (s *server) listing(w http.ResponseWriter, root *os.Root, name string) {
	entries, err := fs.ReadDir(root.FS(), name)
	if err != nil {
		http.Error(w, "cannot read folder", http.StatusInternalServerError)
		return
	}
	var list []listingEntry
	for _, e := range entries {
		if ValidTestName(e.Name()) != nil {
			continue
		}
		le := listingEntry{Name: e.Name(), Dir: e.IsDir()}
		if e.Type()&fs.ModeSymlink != 0 {
			if st, err := fs.Stat(root.FS(), path.Join(name, e.Name())); err == nil {
				le.Dir = st.IsDir()
			}
		} else if info, err := e.Info(); err == nil {
			le.Size = info.Size()
		}
		list = append(list, le)
	}
	isRun := false
	if _, err := fs.Stat(root.FS(), path.Join(name, HistoryFile)); err == nil {
		isRun = true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	_ = listingTmpl.Execute(w, map[string]any{"Path": name, "Entries": list, "IsRun": isRun})
}

func (s *server) zip(w http.ResponseWriter, r *http.Request, rel string) {
	name, ok := cleanRel(rel)
	if !ok || name == "." {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	root, err := os.OpenRoot(s.store)
	if err != nil {
		http.Error(w, "store not readable", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	fsys := root.FS()
	if st, err := fs.Stat(fsys, name); err != nil || !st.IsDir() {
		http.NotFound(w, r)
		return
	}
	prefix := strings.ReplaceAll(name, "/", "-")
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+prefix+`.zip"`)
	if r.Method == http.MethodHead {
		return
	}
	zw := zip.NewWriter(w)
	// WalkDir does not follow symlinks below name; only regular files are archived.
	err = fs.WalkDir(fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable entry is left out
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = prefix + "/" + strings.TrimPrefix(strings.TrimPrefix(p, name), "/")
		hdr.Method = zip.Deflate
		zf, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		_, err = io.Copy(zf, f)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		// Headers are sent: all we can do is cut the archive short, which clients detect.
		panic(http.ErrAbortHandler)
	}
}

type indexView struct {
	Store       string
	Runs        []Run
	Total       int // runs matching the filters
	Tests       []string
	Test        string
	Verdict     string
	Verdicts    []string
	Counts      map[string]int
	Truncated   bool
	ErrorString string
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := indexView{Store: s.store, Test: q.Get("test"), Verdict: q.Get("verdict"),
		Verdicts: []string{VerdictValid, VerdictInvalid, VerdictUnknown, VerdictIncomplete}, Counts: map[string]int{}}
	if v.Verdict != "" && v.Verdict != VerdictValid && v.Verdict != VerdictInvalid && v.Verdict != VerdictUnknown && v.Verdict != VerdictIncomplete {
		http.Error(w, "verdict must be valid, invalid, unknown or incomplete", http.StatusBadRequest)
		return
	}
	runs, err := ListRuns(s.store)
	if err != nil {
		v.ErrorString = err.Error()
	}
	tests := map[string]bool{}
	for _, run := range runs {
		tests[run.Test] = true
		if v.Test != "" && run.Test != v.Test {
			continue
		}
		v.Counts[run.Verdict]++
		if v.Verdict != "" && run.Verdict != v.Verdict {
			continue
		}
		v.Total++
		if len(v.Runs) < maxIndexRows {
			v.Runs = append(v.Runs, run)
		}
	}
	v.Truncated = v.Total > len(v.Runs)
	for t := range tests {
		v.Tests = append(v.Tests, t)
	}
	sort.Strings(v.Tests)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	_ = indexTmpl.Execute(w, v)
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>harness runs</title><style>` + pageCSS + `</style></head>
<body><h1>Runs</h1>
<p class="muted">store <code>{{.Store}}</code> ·
{{range .Verdicts}}<span class="badge {{.}}">{{.}}: {{index $.Counts .}}</span> {{end}}</p>
{{with .ErrorString}}<p class="problem">{{.}}</p>{{end}}
<form class="filter" method="get" action="/">
<label>test <select name="test"><option value="">all</option>{{range .Tests}}<option{{if eq . $.Test}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>verdict <select name="verdict"><option value="">all</option>{{range .Verdicts}}<option{{if eq . $.Verdict}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<button type="submit">filter</button> <a href="/">clear</a></form>
<table id="runs"><tr><th>started (UTC)</th><th>test</th><th>target</th><th>verdict</th><th>report</th><th>files</th><th>download</th></tr>
{{range .Runs}}<tr class="{{.Verdict}}"><td>{{if .Start.IsZero}}{{.Name}}{{else}}{{.Start.Format "2006-01-02 15:04:05"}}{{end}}</td>
<td><a href="/?test={{.Test}}">{{.Test}}</a></td><td>{{.Target}}</td><td>{{.Verdict}}</td>
<td>{{if .Report}}<a href="/runs/{{.Path}}/report.html">report</a>{{end}}</td>
<td><a href="/runs/{{.Path}}/">{{.Name}}</a></td><td><a href="/zip/{{.Path}}.zip">zip</a></td></tr>
{{else}}<tr><td colspan="7" class="muted">no runs{{if or .Test .Verdict}} match{{end}}</td></tr>{{end}}
</table>
{{if .Truncated}}<p class="muted">Showing {{len .Runs}} of {{.Total}} runs; filter to see older ones.</p>{{end}}
</body></html>
`))

var listingTmpl = template.Must(template.New("listing").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{{.Path}}</title><style>` + pageCSS + `</style></head>
<body><p><a href="/">all runs</a></p><h1>{{.Path}}</h1>
{{if .IsRun}}<p><a href="/zip/{{.Path}}.zip">download as zip</a></p>{{end}}
<ul>{{range .Entries}}<li><a href="./{{.Name}}{{if .Dir}}/{{end}}">{{.Name}}{{if .Dir}}/{{end}}</a>{{if not .Dir}} <span class="muted">{{.Size}} bytes</span>{{end}}</li>{{end}}</ul>
</body></html>
`))
