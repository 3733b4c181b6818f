package results

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/raftcheck/harness/history"
)

// Plot limits: a latency series keeps at most maxLatencyPoints points (the fastest and slowest
// op of each time slice), and throughput uses at most maxRateBuckets buckets, so that a report of
// a long soak stays a few hundred kilobytes.
const (
	maxLatencyPoints = 1200
	maxRateBuckets   = 150
)

var outcomeColor = map[history.Type]color.RGBA{
	history.OK:   {0x1f, 0x77, 0xb4, 0xff}, // blue
	history.Fail: {0xd6, 0x27, 0x28, 0xff}, // red
	history.Info: {0xff, 0x9f, 0x1a, 0xff}, // orange
}

var outcomes = []history.Type{history.OK, history.Fail, history.Info}

// faultPalette colours fault kinds in order of first appearance.
var faultPalette = []color.RGBA{
	{0x99, 0x99, 0x99, 0x40}, {0x8c, 0x56, 0x4b, 0x40}, {0x94, 0x67, 0xbd, 0x40},
	{0x2c, 0xa0, 0x2c, 0x40}, {0xe3, 0x77, 0xc2, 0x40}, {0x17, 0xbe, 0xcf, 0x40},
}

// faultColors assigns a colour to each fault kind.
func faultColors(faults []faultWindow) map[string]color.RGBA {
	m := make(map[string]color.RGBA)
	for _, w := range faults {
		if _, ok := m[w.F]; !ok {
			m[w.F] = faultPalette[len(m)%len(faultPalette)]
		}
	}
	return m
}

// plotLabel keeps the characters of s that are safe and legible in a plot label. gonum escapes
// text itself; this is a second guard and keeps labels short.
func plotLabel(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" ._:-+", c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 24 {
			break
		}
	}
	return b.String()
}

type point struct{ x, y float64 }

// downsample returns at most n points of pts (sorted by x): the lowest and the highest y of
// each of n/2 equal slices of the x range, so outliers survive.
func downsample(pts []point, n int) []point {
	if len(pts) <= n || n < 2 {
		return pts
	}
	slices := n / 2
	lo, hi := pts[0].x, pts[len(pts)-1].x
	width := (hi - lo) / float64(slices)
	if width <= 0 {
		width = 1
	}
	out := make([]point, 0, n)
	for i := 0; i < len(pts); {
		s := int((pts[i].x - lo) / width)
		j := i
		minI, maxI := i, i
		for j < len(pts) && (int((pts[j].x-lo)/width) == s || s >= slices-1) {
			if pts[j].y < pts[minI].y {
				minI = j
			}
			if pts[j].y > pts[maxI].y {
				maxI = j
			}
			j++
		}
		out = append(out, pts[min(minI, maxI)])
		if minI != maxI {
			out = append(out, pts[max(minI, maxI)])
		}
		i = j
	}
	return out
}

// shadeFaults adds a shaded band per fault window from ylo to yhi, labelled by fault kind near
// the top (labels of overlapping windows are staggered), and one legend entry per kind.
func shadeFaults(p *plot.Plot, faults []faultWindow, ylo, yhi float64, logY bool) error {
	colors := faultColors(faults)
	seen := make(map[string]bool)
	var lxy plotter.XYs
	var ltext []string
	for i, w := range faults {
		x0, x1 := float64(w.Start)/1e9, float64(w.End)/1e9
		if x1 <= x0 {
			x1 = x0 + 0.05
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: ylo}, {X: x1, Y: ylo}, {X: x1, Y: yhi}, {X: x0, Y: yhi}})
		if err != nil {
			return err
		}
		poly.Color = colors[w.F]
		poly.LineStyle.Width = 0
		p.Add(poly)
		if !seen[w.F] {
			seen[w.F] = true
			p.Legend.Add("fault: "+plotLabel(w.F), poly)
		}
		// Stagger labels downwards from the top, in a band of four rows.
		row := float64(i%4) + 1
		var y float64
		if logY {
			y = yhi / math.Pow(1.6, row)
		} else {
			y = yhi - (yhi-ylo)*0.06*row
		}
		lxy = append(lxy, plotter.XY{X: x0, Y: y})
		ltext = append(ltext, plotLabel(w.F))
	}
	if len(lxy) > 0 {
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: lxy, Labels: ltext})
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Font.Size = vg.Points(8)
			labels.TextStyle[i].Color = color.RGBA{0x33, 0x33, 0x33, 0xff}
		}
		p.Add(labels)
	}
	return nil
}

// latencyPlot draws every completed client op at its invoke time with its latency in ms (log
// scale), coloured by outcome, over shaded fault windows.
func latencyPlot(cops []clientOp, faults []faultWindow, end int64) (template.HTML, error) {
	p := plot.New()
	p.Title.Text = "Latency of client operations (invoke to completion)"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	series := make(map[history.Type][]point)
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, o := range cops {
		if !o.Completed() {
			continue
		}
		ms := math.Max(float64(o.Return-o.Call)/1e6, 0.01)
		series[o.Type] = append(series[o.Type], point{float64(o.Call) / 1e9, ms})
		ylo, yhi = math.Min(ylo, ms), math.Max(yhi, ms)
	}
	if math.IsInf(ylo, 0) {
		ylo, yhi = 0.1, 1000
	}
	// Round the range out to powers of ten, with head room for the fault labels.
	ylo = math.Pow(10, math.Floor(math.Log10(ylo)))
	yhi = math.Pow(10, math.Ceil(math.Log10(yhi))+0.6)
	if err := shadeFaults(p, faults, ylo, yhi, true); err != nil {
		return "", err
	}
	for _, t := range outcomes {
		pts := series[t]
		if len(pts) == 0 {
			continue
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
		n := len(pts)
		pts = downsample(pts, maxLatencyPoints)
		xys := make(plotter.XYs, len(pts))
		for i, q := range pts {
			xys[i] = plotter.XY{X: q.x, Y: q.y}
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return "", err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: outcomeColor[t], Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		name := fmt.Sprintf("%s (%d)", t, n)
		if len(pts) < n {
			name = fmt.Sprintf("%s (%d, %d drawn)", t, n, len(pts))
		}
		p.Add(s)
		p.Legend.Add(name, s)
	}
	p.X.Min, p.X.Max = 0, math.Max(float64(end)/1e9, 1)
	p.Y.Min, p.Y.Max = ylo, yhi
	return renderSVG(p)
}

// rateBucket picks a round bucket width (s) so that the run has at most maxRateBuckets buckets.
func rateBucket(end int64) float64 {
	secs := float64(end) / 1e9
	for _, w := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		if secs/w <= maxRateBuckets {
			return w
		}
	}
	return math.Ceil(secs / maxRateBuckets)
}

// ratePlot draws completions per second by outcome, in buckets, over shaded fault windows.
func ratePlot(cops []clientOp, faults []faultWindow, end int64) (template.HTML, error) {
	width := rateBucket(end)
	n := int(float64(end)/1e9/width) + 1
	counts := make(map[history.Type][]float64)
	for _, t := range outcomes {
		counts[t] = make([]float64, n)
	}
	for _, o := range cops {
		if !o.Completed() {
			continue
		}
		b := min(int(float64(o.Return)/1e9/width), n-1)
		counts[o.Type][b]++
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput by outcome (completions per second, %g s buckets)", width)
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "ops/s"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	yhi := 1.0
	for _, t := range outcomes {
		for _, c := range counts[t] {
			yhi = math.Max(yhi, c/width)
		}
	}
	yhi *= 1.35 // head room for the fault labels
	if err := shadeFaults(p, faults, 0, yhi, false); err != nil {
		return "", err
	}
	for _, t := range outcomes {
		xys := make(plotter.XYs, 0, n+1)
		total := 0.0
		for i, c := range counts[t] {
			xys = append(xys, plotter.XY{X: float64(i) * width, Y: c / width})
			total += c
		}
		if total == 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(n) * width, Y: xys[n-1].Y})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return "", err
		}
		l.StepStyle = plotter.PostStep
		l.Color = outcomeColor[t]
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(string(t), l)
	}
	p.X.Min, p.X.Max = 0, math.Max(float64(end)/1e9, 1)
	p.Y.Min, p.Y.Max = 0, yhi
	return renderSVG(p)
}

// renderSVG renders p as an inline <svg> element (without the XML prolog), scaled by CSS.
func renderSVG(p *plot.Plot) (template.HTML, error) {
	c := vgsvg.New(9*vg.Inch, 3.6*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("render plot: %w", err)
	}
	return inlineSVG(buf.String())
}

// inlineSVG cuts an SVG document down to its <svg> element and refuses anything that could run
// or load something. The SVG is ours (gonum escapes every text), so this only guards mistakes.
func inlineSVG(doc string) (template.HTML, error) {
	i := strings.Index(doc, "<svg")
	if i < 0 {
		return "", fmt.Errorf("render plot: no <svg> element")
	}
	s := doc[i:]
	low := strings.ToLower(s)
	for _, bad := range []string{"<script", "<foreignobject", "javascript:", " on", "<iframe", "<image", "href=\"http"} {
		if bad == " on" {
			if onAttr(low) {
				return "", fmt.Errorf("render plot: event handler attribute in SVG")
			}
			continue
		}
		if strings.Contains(low, bad) {
			return "", fmt.Errorf("render plot: unexpected %q in SVG", bad)
		}
	}
	//nolint:gosec // checked above; generated by gonum with escaped text
	return template.HTML(s), nil
}

// onAttr reports whether an SVG has an attribute that looks like an event handler (onload=…)
// inside a tag. Text content is escaped by gonum and cannot contain '<'.
func onAttr(low string) bool {
	inTag := false
	for i := 0; i < len(low); i++ {
		switch low[i] {
		case '<':
			inTag = true
		case '>':
			inTag = false
		case ' ', '\t', '\n':
			if inTag && i+3 < len(low) && low[i+1] == 'o' && low[i+2] == 'n' {
				j := i + 3
				for j < len(low) && low[j] >= 'a' && low[j] <= 'z' {
					j++
				}
				if j < len(low) && low[j] == '=' {
					return true
				}
			}
		}
	}
	return false
}
