package results

// pageCSP forbids every fetch and every script: the pages are self-contained and static.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'"

// pageCSS is shared by the report and the serve index. Verdict colours follow Jepsen's web view.
const pageCSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin:.2em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f6f6;padding:.7em;overflow:auto;max-height:24em;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.valid{background:#6DB6FE}.invalid{background:#FEB5DA}.unknown{background:#FFAA26}.incomplete{background:#ccc}.not-applicable{background:#eee}
.badge{display:inline-block;padding:.15em .6em;border-radius:.3em;font-weight:600}
.verdict{padding:.6em 1em;border-radius:.4em;margin:.6em 0}
.verdict h1{font-size:1.8em}
svg.plot,.plot svg{max-width:100%;height:auto;display:block}
.muted{color:#666}.problem{color:#a00}
.tl .ok{fill:#9ecae1;stroke:#1f77b4}.tl .fail{fill:#fcbba1;stroke:#d62728}.tl .info{fill:#fdd0a2;stroke:#ff7f0e}
.tl .pending{fill:#eee;stroke:#999;stroke-dasharray:4 2}.tl .anomaly{stroke:#000;stroke-width:3}
.tl text{font-size:11px;font-family:ui-monospace,Menlo,monospace}.tl .fault{fill:#999;fill-opacity:.18}
.tl .lane{fill:#444}.tl .axis{stroke:#bbb}.tl .leader line{stroke:#2a6fdb;stroke-width:2;stroke-dasharray:4 3}
form.filter{margin:1em 0}form.filter *{margin-right:.5em}
`

const reportHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="` + pageCSP + `">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.VerdictText}} — {{.Dir}}</title>
<style>` + pageCSS + `</style></head>
<body>
<div class="verdict {{.Verdict}}" id="verdict">
<h1>Verdict: {{.VerdictText}}</h1>
<div>{{if .HasTest}}target <code id="target">{{.Test.TargetLabel}}</code> · {{end}}{{.Dir}}{{if .HasTest}} · seed <code>{{.Test.Seed}}</code>{{with .Test.RunID}} · run {{.}}{{end}}{{end}} · {{printf "%.1f" .Duration}} s of history · {{.Ops}} history lines</div>
</div>
{{if .HarnessErr}}<p class="problem"><b>Harness error:</b> <code>{{.HarnessErr}}</code></p>{{end}}
{{if .Why}}<h2 id="why">Why</h2><ul>{{range .Why}}<li><b>{{.Checker}}</b>: {{.Reason}}</li>{{end}}</ul>{{end}}
{{if .Problems}}<ul class="problem">{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}

<h2 id="reproduce">Reproduce</h2>
{{if .HasTest}}<pre id="command">{{.Command}}</pre>
<p class="muted">{{with .Test.GitRevision}}git revision <code>{{.}}</code> · {{end}}{{if not .Test.Start.IsZero}}started {{.Test.Start.UTC.Format "2006-01-02 15:04:05 UTC"}}{{end}}{{with .Test.AgentImage}} · image <code>{{.}}</code>{{end}}</p>
{{with .Test.NodeCommandLines}}<details><summary>Node command lines</summary><table id="node-commands">{{range .}}<tr><th>{{index . 0}}</th><td><code>{{index . 1}}</code></td></tr>{{end}}</table></details>{{end}}
<details><summary>Options</summary><table>{{range .Options}}<tr><th>{{index . 0}}</th><td><code>{{index . 1}}</code></td></tr>{{end}}</table></details>
{{else}}<p class="muted">No test.json in this folder.</p>{{end}}

<h2 id="plots">Latency and throughput</h2>
<div class="plot" id="latency">{{.LatencySVG}}</div>
<div class="plot" id="rate">{{.RateSVG}}</div>
{{if .Faults}}<table><tr><th>fault</th><th>targets</th><th>start (s)</th><th>end (s)</th></tr>
{{range .Faults}}<tr><td>{{.F}}</td><td>{{join .Targets ", "}}</td><td class="n">{{seconds .Start}}</td><td class="n">{{seconds .End}}</td></tr>{{end}}</table>
{{else}}<p class="muted">No faults were injected.</p>{{end}}

{{with .Anomaly}}<h2 id="anomaly">First anomaly: key <code>{{.Key}}</code></h2>
<p>{{.Checker}}: {{.Description}} <span class="muted">(history index {{.Index}}, process {{.Process}}, {{printf "%.3f" .Time}} s)</span></p>
{{if .Visual}}<p><a href="./{{.Visual}}">Porcupine's visualisation of key {{.Key}}</a></p>{{end}}
{{if .Excerpt}}{{with .Timeline}}<svg class="tl plot" xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="timeline of the operations around the anomaly">
{{range .Faults}}<rect class="fault" x="{{.X}}" y="0" width="{{.W}}" height="{{$.Anomaly.Timeline.Height}}"><title>{{.Label}}</title></rect><text x="{{.X}}" y="12">{{.Label}}</text>
{{end}}{{range .Lanes}}<text class="lane" x="4" y="{{.Y}}">{{.Label}}</text>
{{end}}{{range .Bars}}<g><title>{{.Title}}</title><rect class="{{.Class}}{{if .Anomaly}} anomaly{{end}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" rx="3"></rect><text x="{{.TextX}}" y="{{.Y}}" dy="15">{{.Label}}</text></g>
{{end}}{{range .Ticks}}<line class="axis" x1="{{.X}}" x2="{{.X}}" y1="16" y2="{{$.Anomaly.Timeline.AxisY}}"></line><text x="{{.X}}" y="{{$.Anomaly.Timeline.Height}}" dy="-6">{{.Label}}</text>
{{end}}</svg>{{end}}
<table><tr><th>index</th><th>process</th><th>operation</th><th>call (s)</th><th>return (s)</th><th>node</th><th>error</th></tr>
{{range .Excerpt}}<tr{{if or (eq .Index $.Anomaly.Index) (eq .Done $.Anomaly.Index)}} class="invalid"{{end}}><td class="n">{{.Index}}</td><td class="n">{{.Process}}</td><td><code>{{describe .}}</code></td><td class="n">{{seconds .Call}}</td><td class="n">{{if .Completed}}{{seconds .Return}}{{else}}—{{end}}</td><td>{{.Node}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
<p class="muted">Every operation on this key that overlaps the anomalous one, and the last operations before it. The thick outline marks the anomaly.</p>
{{else}}<p class="muted">The anomaly's operation is not in the history.</p>{{end}}
{{end}}

{{range .Sets}}<h2 id="set">Set: lost and unexpected elements ({{.Checker}})</h2>
<p><b>Lost</b> ({{.LostN}}): {{if .Lost}}<code>{{join .Lost ", "}}</code>{{if gt .LostN (len .Lost)}} …{{end}}{{else}}none{{end}}</p>
<p><b>Unexpected</b> ({{.UnexpectedN}}): {{if .Unexpected}}<code>{{join .Unexpected ", "}}</code>{{if gt .UnexpectedN (len .Unexpected)}} …{{end}}{{else}}none{{end}}</p>
{{end}}

{{if .Locks}}<h2 id="locks">Lock holders</h2>
<p class="muted">One lane per process that held the lock; a bar from the acquisition to the moment the holder stopped believing it held the lock (noticed the loss or began to release); orange: a later holder had already acquired it; shaded: faults; blue dashed lines: a new leadership term first seen by the harness's leader watch (a new leader, or the same one re-elected: Consul's new leader re-arms every session's TTL timer).</p>
{{range .Locks}}{{$lt := .}}<h3>lock <code>{{.Lock}}</code>: {{.Holdings}} holdings, {{.Overlaps}} overlapping beliefs</h3>
{{if .Omitted}}<p class="muted">{{.Omitted}} holdings of later processes are not drawn.</p>{{end}}
{{with .TL}}<svg class="tl plot" xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="holders of lock {{$lt.Lock}}">
{{range .Faults}}<rect class="fault" x="{{.X}}" y="0" width="{{.W}}" height="{{$lt.TL.Height}}"><title>{{.Label}}</title></rect><text x="{{.X}}" y="12">{{.Label}}</text>
{{end}}{{range .Lanes}}<text class="lane" x="4" y="{{.Y}}">{{.Label}}</text>
{{end}}{{range .Bars}}<g><title>{{.Title}}</title><rect class="{{.Class}}{{if .Anomaly}} anomaly{{end}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"></rect></g>
{{end}}{{range .Ticks}}<line class="axis" x1="{{.X}}" x2="{{.X}}" y1="16" y2="{{$lt.TL.AxisY}}"></line><text x="{{.X}}" y="{{$lt.TL.Height}}" dy="-6">{{.Label}}</text>
{{end}}{{range .Marks}}<g class="leader"><title>{{.Label}}</title><line x1="{{.X}}" x2="{{.X}}" y1="16" y2="{{$lt.TL.AxisY}}"></line></g>
{{end}}</svg>{{end}}{{end}}{{end}}

<h2 id="checkers">Checkers</h2>
<table><tr><th>checker</th><th>verdict</th><th>reason</th></tr>
{{range .Checkers}}<tr><td>{{.Name}}</td><td class="{{.Valid}}">{{.Valid}}</td><td>{{.Error}}{{with .Anomaly}}<br><span class="muted">first anomaly: index {{.Index}}, process {{.Process}}{{with .Key}}, key <code>{{.}}</code>{{end}}: {{.Description}}</span>{{end}}</td></tr>
{{end}}</table>
{{range .Checkers}}{{range .Counterexamples}}<h3 id="counterexample-{{.Key}}">Counterexample: key <code>{{.Key}}</code></h3>
<p>{{len .Ops}} operations of the key that are still not linearizable (shrunk from its whole history).</p>
<table><tr><th>index</th><th>process</th><th>operation</th><th>invoked s</th><th>returned s</th></tr>
{{range .Ops}}<tr><td class="n">{{.Index}}</td><td class="n">{{.Process}}</td><td><code>{{.Op}}</code></td><td class="n">{{seconds .Call}}</td><td class="n">{{if ge .Return 0}}{{seconds .Return}}{{else}}?{{end}}</td></tr>
{{end}}</table>
{{end}}{{end}}{{range .Checkers}}{{if .Details}}<details><summary>{{.Name}} details</summary><pre>{{.Details}}</pre></details>{{end}}{{end}}

{{if .Recovery}}<h2 id="recovery">Recovery (liveness)</h2><table>{{range .Recovery}}<tr><th>{{index . 0}}</th><td><code>{{index . 1}}</code></td></tr>{{end}}</table>{{end}}

<h2 id="counts">Operations</h2>
<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>no completion</th><th>total</th></tr>
{{range .Counts}}<tr><td>{{.F}}</td><td class="n">{{.OK}}</td><td class="n">{{.Fail}}</td><td class="n">{{.Info}}</td><td class="n">{{.Incomplete}}</td><td class="n">{{.Total}}</td></tr>
{{end}}</table>

{{if .Phases}}<h2 id="phases">Phases</h2><table><tr><th>phase</th><th>seconds</th><th>error</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td class="n">{{printf "%.2f" .Seconds}}</td><td>{{.Error}}</td></tr>{{end}}</table>{{end}}

<h2 id="files">Files</h2>
<ul><li><a href="history.jsonl">history.jsonl</a></li><li><a href="results.json">results.json</a></li><li><a href="test.json">test.json</a></li>
{{range .Visuals}}<li><a href="./{{.}}">{{.}}</a> (porcupine)</li>{{end}}
{{range .Logs}}<li><a href="./{{.}}">{{.}}</a></li>{{end}}</ul>
</body></html>
`
