package results

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumNames are the executables tried, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// findChromium returns the browser to drive, or fails: CI installs Debian's chromium package.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("no Chromium found (looked for " + strings.Join(chromiumNames, ", ") + ")")
	}
	t.Fatalf("no Chromium found (looked for %s): install Debian's chromium package (apt-get install -y chromium), set CHROMIUM=/path/to/browser, or run with -short to skip the browser test",
		strings.Join(chromiumNames, ", "))
	return ""
}

// artefactsDir is where screenshots go: $ARTEFACTS_DIR, or a temporary folder.
func artefactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTEFACTS_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageWatch records what a page must not do: write errors to the console, throw, open a
// dialog (alert), or fetch anything from a host other than the test server.
type pageWatch struct {
	mu       sync.Mutex
	problems []string
	allowed  string // host:port of the test server
}

func (w *pageWatch) add(format string, args ...any) {
	w.mu.Lock()
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

func (w *pageWatch) listen(ev any) {
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			w.add("console.%s", e.Type)
		}
	case *runtime.EventExceptionThrown:
		w.add("exception: %s", e.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
			w.add("browser log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	case *page.EventJavascriptDialogOpening:
		w.add("a dialog opened: %s %q", e.Type, e.Message)
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(e.Request.URL)
		if err != nil || (u.Scheme != "file" && u.Scheme != "data" && u.Host != w.allowed) {
			w.add("request to %s", e.Request.URL)
		}
	}
}

func (w *pageWatch) check(t *testing.T, what string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.problems {
		t.Errorf("%s: %s", what, p)
	}
	w.problems = nil
}

// TestBrowser renders a report (with hostile strings in it) and the serve index in headless
// Chromium and checks that the verdict and the plots show, that nothing runs or fails in the
// console, and that nothing is fetched from elsewhere. It saves screenshots to $ARTEFACTS_DIR.
func TestBrowser(t *testing.T) {
	exe := findChromium(t)
	store := filepath.Join(t.TempDir(), "store")
	fx := makeRun(t, store, "register-partition", "20260102T030405", true)
	if err := WriteReport(fx.dir); err != nil {
		t.Fatal(err)
	}
	other := makeRun(t, store, "register-kill", "20260101T000000", false)
	res := readResults(t, other.dir)
	res.Valid = 1 // checker.Valid
	if err := WriteJSON(filepath.Join(other.dir, ResultsFile), res); err != nil {
		t.Fatal(err)
	}
	if err := MarkLatest(store, fx.dir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(store)) // listens on 127.0.0.1
	defer srv.Close()
	out := artefactsDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1200, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil { // start the browser and open the tab
		t.Fatalf("start %s: %v", exe, err)
	}
	watch := &pageWatch{allowed: strings.TrimPrefix(srv.URL, "http://")}
	if err := chromedp.Listen(bctx, watch.listen); err != nil {
		t.Fatal(err)
	}

	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return s
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	checkReport := func(u, shot string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(u)); err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		if v := eval(`document.querySelector('#verdict h1').innerText`); v != "Verdict: invalid" {
			t.Errorf("%s: verdict reads %q", u, v)
		}
		// The plots are inline SVG with drawn content and a real size on the page.
		plots := eval(`Array.from(document.querySelectorAll('svg')).map(s => {const r = s.getBoundingClientRect(); return s.querySelectorAll('path,rect,circle,text').length > 10 && r.width > 300 && r.height > 100}).join(',')`)
		if plots != "true,true,true" {
			t.Errorf("%s: svg elements drawn: %s, want three (latency, throughput, timeline)", u, plots)
		}
		if k := eval(`document.querySelector('#anomaly').innerText`); !strings.Contains(k, "r1") {
			t.Errorf("%s: anomaly heading %q", u, k)
		}
		if n := eval(`String(document.scripts.length + document.images.length)`); n != "0" {
			t.Errorf("%s: %s scripts or images in the page", u, n)
		}
		if txt := eval(`document.body.innerText`); !strings.Contains(txt, evilImg) {
			t.Errorf("%s: the hostile option is not shown as text", u)
		}
		shoot(shot)
		watch.check(t, u)
	}

	checkReport("file://"+filepath.Join(fx.dir, ReportFile), "report.png")
	checkReport(srv.URL+"/runs/latest/report.html", "report-served.png")

	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	rows := eval(`Array.from(document.querySelectorAll('#runs tr[class]')).map(r => r.className + ' ' + getComputedStyle(r).backgroundColor).join(';')`)
	if rows != "invalid rgb(254, 181, 218);valid rgb(109, 182, 254)" {
		t.Errorf("index rows (newest first, coloured by verdict): %s", rows)
	}
	shoot("index.png")
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?verdict=valid")); err != nil {
		t.Fatal(err)
	}
	if n := eval(`String(document.querySelectorAll('#runs tr[class]').length)`); n != "1" {
		t.Errorf("filtered index shows %s runs, want 1", n)
	}
	watch.check(t, "index")
}
