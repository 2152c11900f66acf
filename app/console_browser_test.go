package app_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// browser is a headless Debian chromium driven by chromedp, with the
// console messages of its tab collected.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	msg []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "the console's browser test needs Debian's chromium (scripts/install-deps.sh installs it)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		// Root in a container has no user namespace for the sandbox.
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	b := &browser{t: t, ctx: ctx}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msg = append(b.msg, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// errors returns the error and exception messages of the console so far.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msg {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
			out = append(out, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
		}
	}
	return out
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...))
}

func (b *browser) eval(js string, opts ...chromedp.EvaluateOption) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, opts...))
	require.NoError(b.t, err, js)
	return v
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// Read it in one evaluation: the live part may be swapped between a
	// node lookup and a read of the node.
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
	require.NoError(b.t, err, sel)
	return v
}

// waitJS waits until a JavaScript predicate holds in the page. It asks
// again after an error, since a navigation in between takes away the page's
// JavaScript context.
func (b *browser) waitJS(js string, timeout time.Duration, msg string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			b.t.Fatalf("%s (waited %s for %s; last error %v; page %s)", msg, timeout, js, last, b.location())
		}
		time.Sleep(25 * time.Millisecond) // polling the page, not waiting for a result
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	return v
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	require.NoError(b.t, err)
	return n
}

// shoot saves the page at desktop and phone sizes into CONSOLE_SCREENSHOTS
// (when set), and checks at the phone size that the page does not scroll
// sideways, whether or not screenshots are wanted.
func (b *browser) shoot(name, url string) {
	b.t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	for _, size := range []struct {
		label string
		w, h  int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		b.do(chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(url))
		b.waitJS(`document.readyState === "complete"`, 10*time.Second, "page never loaded")
		if size.label == "phone" {
			overflow := b.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`)
			require.Equal(b.t, "0", overflow, "%s scrolls sideways on a 390 px phone", name)
		}
		if dir == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		require.NoError(b.t, err)
		require.NoError(b.t, os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644))
	}
	b.do(chromedp.EmulateViewport(1280, 800))
}

// The on-call flow in a real browser against the real service on real
// Mosquitto and InfluxDB: sign in, see an overheat turn its cell red live,
// acknowledge, "on site", a refused and an accepted reset, sign out; a
// viewer sees no control and a forged POST is refused; the browser console
// stays free of errors throughout.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: starts chromium, Mosquitto and InfluxDB")
	}
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cfg := testConfig(t, mosq.URL, influx, t.TempDir())
	cfg.API.Tokens = []config.APIToken{
		{Name: "alice", Token: "operator-token-0123456789", Role: "operator"},
		{Name: "victor", Token: "viewer-token-0123456789", Role: "viewer"},
	}
	cg := start(t, cfg, app.Options{})
	base := "http://" + cg.app.HTTPAddr()

	pile := newTestPile(t, mosq.URL, "s1", "p1")
	other := newTestPile(t, mosq.URL, "s1", "p2")
	third := newTestPile(t, mosq.URL, "s2", "p1")
	pile.send(telemetry.StateCharging, 2, 40)
	other.send(telemetry.StateCharging, 3, 35)
	third.send(telemetry.StateCharging, 1, 30)
	// Keep the piles talking, as real ones do, so that the engine sees
	// them online and the reset's freshness check has readings.
	hot := make(chan float64, 1)
	stopFeed := make(chan struct{})
	var feedDone sync.WaitGroup
	feedDone.Add(1)
	go func() {
		defer feedDone.Done()
		temp := -1.0
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopFeed:
				return
			case temp = <-hot:
			case <-tick.C:
			}
			other.send(telemetry.StateCharging, 3, 35)
			third.send(telemetry.StateCharging, 1, 30)
			if temp >= 0 {
				pile.send(telemetry.StateClosed, 0, temp)
			}
		}
	}()
	t.Cleanup(func() { close(stopFeed); feedDone.Wait() })

	b := newBrowser(t)
	if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}

	// Sign in.
	b.do(chromedp.Navigate(base + "/sites/s1"))
	b.waitJS(`location.pathname === "/signin"`, 5*time.Second, "no redirect to sign-in")
	b.shoot("signin", base+"/signin?next=/sites/s1")
	b.do(
		chromedp.SendKeys(chromedp.ID("name"), "alice"),
		chromedp.SendKeys(chromedp.ID("token"), "operator-token-0123456789"),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
	b.waitJS(`location.pathname === "/sites/s1"`, 5*time.Second, "sign-in did not return to the page asked for")
	require.Contains(t, b.text(".who"), "alice")

	// The grid shows port 3 charging; an overheat turns it red with no
	// reload.
	b.waitJS(`(document.querySelector("#cell-p1-3")||{}).dataset?.state === "charging"`, 5*time.Second, "port 3 never showed charging")
	b.eval(`window.__sameDocument = "yes"`)
	pile.send(telemetry.StateCharging, 2, 71)
	require.Eventually(t, func() bool { return len(pile.commands()) > 0 }, 10*time.Second, 10*time.Millisecond, "no close command")
	require.Equal(t, telemetry.ActionClose, pile.commands()[0].Action)
	latchedAt := time.Now()
	b.waitJS(`document.querySelector("#cell-p1-3").dataset.state === "latched"`, 2*time.Second,
		"the cell did not turn latched within 2 s of the cut")
	t.Logf("cell red %s after the pile got its close command", time.Since(latchedAt).Round(time.Millisecond))
	require.Equal(t, "yes", b.eval(`window.__sameDocument || "reloaded"`), "the page reloaded")
	require.Equal(t, "rgb(198, 40, 40)", b.eval(`getComputedStyle(document.querySelector("#cell-p1-3")).backgroundColor`), "a latched cell is red")
	hot <- 66 // the pile reports the port closed and still hot
	b.shoot("fleet", base+"/")
	b.shoot("site", base+"/sites/s1")

	// Acknowledge it and mark "on site" from the alerts page.
	b.do(chromedp.Navigate(base + "/alerts"))
	b.waitJS(`!!document.querySelector("#alert-overheat-s1-p1-3 button.ack")`, 5*time.Second, "no acknowledge button")
	b.do(chromedp.Click(chromedp.CSS("#alert-overheat-s1-p1-3 button.ack")))
	b.waitJS(`(document.querySelector("#alert-overheat-s1-p1-3 .acked-by")||{}).textContent?.includes("alice")`, 5*time.Second, "the acknowledgement does not show who")
	b.do(chromedp.Click(chromedp.CSS("#alert-overheat-s1-p1-3 button.onsite")))
	b.waitJS(`(document.querySelector("#flash.good")||{}).textContent?.includes("on site")`, 5*time.Second, "on site not confirmed")
	b.shoot("alerts", base+"/alerts")

	// The alert's page: the timeline has fired, acknowledged, on site; a note.
	b.do(chromedp.Navigate(base + "/alerts/overheat/s1/p1/3"))
	b.do(chromedp.SendKeys(chromedp.ID("note"), "socket scorched; battery moved outside"), chromedp.Click(chromedp.ID("add-note")))
	b.waitJS(`document.querySelectorAll("#timeline li").length >= 4`, 5*time.Second, "the timeline lacks its steps")
	tl := b.text("#timeline")
	for _, s := range []string{"Fired", "Acknowledged", "alice", "On site", "socket scorched"} {
		require.Contains(t, tl, s)
	}
	b.shoot("alert", base+"/alerts/overheat/s1/p1/3")

	// Reset while hot: refused, and the reason shown.
	b.do(chromedp.Navigate(base + "/ports/s1/p1/3"))
	require.Contains(t, b.text("#latch-reason"), "overheat")
	b.do(chromedp.Click(chromedp.ID("reset")))
	b.waitJS(`!!document.querySelector("#flash.bad")`, 5*time.Second, "no refusal shown")
	require.Contains(t, b.text("#flash"), "has not cleared")
	require.Contains(t, b.text("#audit"), "reset_refused")
	require.Len(t, pile.commands(), 1, "a refused reset sent a command")
	b.shoot("port", base+"/ports/s1/p1/3")

	// Cooled: accepted, and the pile receives the open.
	hot <- 30
	require.Eventually(t, func() bool {
		ports, err := cg.app.Guard().Ports(context.Background(), alerting.PortFilter{Site: "s1", Pile: "p1"})
		return err == nil && len(ports) >= 3 && ports[2].TempC != nil && *ports[2].TempC < 31
	}, 10*time.Second, 50*time.Millisecond, "the cool reading never reached the engine")
	b.do(chromedp.Navigate(base+"/ports/s1/p1/3"), chromedp.Click(chromedp.ID("reset")))
	b.waitJS(`!!document.querySelector("#flash.good")`, 5*time.Second, "the reset was not accepted")
	require.Eventually(t, func() bool {
		cmds := pile.commands()
		return len(cmds) == 2 && cmds[1].Action == telemetry.ActionOpen && cmds[1].Port == 3
	}, 10*time.Second, 20*time.Millisecond, "the pile never received the open")
	recs, err := cg.app.Guard().Audit(context.Background(), "s1", "p1", 3)
	require.NoError(t, err)
	actors := map[alerting.AuditKind]string{}
	for _, r := range recs {
		actors[r.Kind] = r.Actor
	}
	for _, k := range []alerting.AuditKind{alerting.AuditReset, alerting.AuditResetRefused, alerting.AuditAlertAck, alerting.AuditOnSite, alerting.AuditNote} {
		require.Equal(t, "operator:alice", actors[k], "audit %s", k)
	}

	// Sign out: back to sign-in, and the pages are closed again.
	b.do(chromedp.Navigate(base+"/"), chromedp.Click(chromedp.ID("signout")))
	b.waitJS(`location.pathname === "/signin"`, 5*time.Second, "sign-out did not land on sign-in")
	b.do(chromedp.Navigate(base + "/alerts"))
	b.waitJS(`location.pathname === "/signin"`, 5*time.Second, "a page opened after sign-out")

	// A viewer sees no controls.
	b.do(
		chromedp.SendKeys(chromedp.ID("name"), "victor"),
		chromedp.SendKeys(chromedp.ID("token"), "viewer-token-0123456789"),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
	b.waitJS(`location.pathname === "/alerts"`, 5*time.Second, "viewer sign-in failed")
	pile.send(telemetry.StateCharging, 2, 72) // a fresh overheat, so there is something to act on
	require.Eventually(t, func() bool { return len(pile.commands()) == 3 }, 10*time.Second, 10*time.Millisecond, "no second close")
	for _, p := range []string{"/alerts", "/ports/s1/p1/3", "/alerts/overheat/s1/p1/3", "/sites/s1", "/"} {
		b.do(chromedp.Navigate(base + p))
		b.waitJS(`document.readyState === "complete"`, 5*time.Second, p)
		require.Zero(t, b.count("button.ack, button.onsite, #reset, #reset-pile, #note-form"), "a viewer sees a control on %s", p)
	}
	b.shoot("port-viewer", base+"/ports/s1/p1/3")
	// 中文: the switch in the header sets the language for the next pages.
	b.do(chromedp.Navigate(base+"/alerts"), chromedp.Click(chromedp.CSS("a.lang")))
	b.waitJS(`document.documentElement.lang === "zh-CN"`, 5*time.Second, "the language switch did not switch")
	require.Contains(t, b.text("h1"), "告警")
	b.shoot("alerts-zh", base+"/alerts")
	b.shoot("site-zh", base+"/sites/s1")
	require.Empty(t, b.errors(), "errors in the browser console")

	// A forged POST with the viewer's own session and CSRF token is refused.
	status := b.eval(`fetch("/ports/s1/p1/3/reset", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value})}).then(r => String(r.status))`, chromedp.EvalAwaitPromise)
	require.Equal(t, "403", status)
	require.Len(t, pile.commands(), 3, "a viewer's forged reset sent a command")
}
