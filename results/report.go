package results

import (
	"fmt"
	"html/template"
	"os"
	"path/filepath"
)

// WriteReport renders report.html in dir from the run's stored files (test.json, results.json,
// history.jsonl). It reads nothing else and writes nothing else.
func WriteReport(dir string) error {
	var res Results
	if err := ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var test map[string]any
	_ = ReadJSON(filepath.Join(dir, TestFile), &test)
	f, err := os.Create(filepath.Join(dir, ReportFile+".tmp"))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	err = reportTmpl.Execute(f, map[string]any{"Res": res, "Test": test, "Dir": filepath.Base(dir)})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.Rename(filepath.Join(dir, ReportFile+".tmp"), filepath.Join(dir, ReportFile))
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Dir}}: {{.Res.Valid}}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head>
<body><h1>Verdict: {{.Res.Valid}}</h1>
{{if .Res.Error}}<p>Harness error: <code>{{.Res.Error}}</code></p>{{end}}
<h2>Checkers</h2><ul>{{range $k, $v := .Res.Checkers}}<li><b>{{$k}}</b>: {{$v.Valid}} {{$v.Error}}</li>{{end}}</ul>
<h2>Phases</h2><ul>{{range .Res.Phases}}<li>{{.Name}}: {{printf "%.2f" .Seconds}} s {{.Error}}</li>{{end}}</ul>
<h2>Faults</h2><ul>{{range .Res.Faults}}<li>{{.F}} {{.Targets}}: {{printf "%.1f" .Start}}–{{printf "%.1f" .End}} s</li>{{end}}</ul>
</body></html>
`))
