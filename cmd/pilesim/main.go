// Command pilesim runs simulated charging piles against an MQTT broker.
//
//	pilesim [--broker URL] [--fleet FILE | --generate N] [--speed X] [--fault kind@site/pile[/port]@at[@k=v,...]]...
//	pilesim run [--broker URL] [--root R] [--connect-timeout D] [--hold] SCENARIO.yaml...
//	pilesim load --broker URL --piles N [--ports 10] --rate MSGS_PER_SEC --duration D [--conns C] [--qos 1]
//
// The first form runs a fleet until Ctrl-C or --duration, with a summary
// line every few seconds; run checks scenarios and exits 1 if an
// expectation failed (with --hold, its piles then stay online until
// Ctrl-C); load prints a JSON summary line. See package simulators.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/simulators"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// synopsis is the top of every usage message: the three forms.
const synopsis = `Usage:
  pilesim [flags]                     run a fleet until Ctrl-C or --duration
  pilesim run [flags] SCENARIO.yaml.. run scenarios and check their expectations (exit 1 if one fails)
  pilesim load [flags]                send telemetry at a fixed rate and print a JSON summary

"pilesim run --help" and "pilesim load --help" list their flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "run":
		var failed bool
		failed, err = runScenarios(ctx, args[1:], stdout, stderr)
		if err == nil && failed {
			return 1
		}
	case len(args) > 0 && args[0] == "load":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "help":
		fmt.Fprint(stdout, synopsis)
		return 0
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		// A typo must not start the whole fleet.
		fmt.Fprintf(stderr, "pilesim: unknown command %q\n\n%s", args[0], synopsis)
		return 2
	default:
		err = runFleet(ctx, args, stdout, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0 // asked for help and got it
	}
	if err != nil {
		fmt.Fprintln(stderr, "pilesim:", err)
		return 1
	}
	return 0
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func logger(w io.Writer, level string) (zerolog.Logger, error) {
	l, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level: %w", err)
	}
	noColor := true
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			noColor = false
		}
	}
	cw := zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: noColor}
	return zerolog.New(cw).Level(l).With().Timestamp().Logger(), nil
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pilesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o        simulators.Options
		faults   multi
		fleet    = fs.String("fleet", "simulators/fleets/changhe.yaml", "fleet file")
		generate = fs.Int("generate", 0, "simulate a generated fleet of N piles instead of --fleet")
		ports    = fs.Int("ports", 10, "ports per generated pile")
		start    = fs.String("start", "", "model start time, RFC 3339 (season, time of day); default now")
		qos      = fs.Uint("qos", 0, "telemetry QoS (0 or 1)")
		minC     = fs.Float64("min-c", 0, "override the daily minimum outdoor temperature, °C")
		maxC     = fs.Float64("max-c", 0, "override the daily maximum outdoor temperature, °C")
		sun      = fs.Float64("sun", -1, "override sunshine, 0..1")
		level    = fs.String("log-level", "info", "log level")
		dry      = fs.Bool("dry-run", false, "no broker: print the first --duration of messages (topic and payload per line) as fast as possible")
	)
	fs.StringVar(&o.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	fs.StringVar(&o.Root, "root", "chargers", "topic root")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fs.Float64Var(&o.Speed, "speed", 1, "simulated seconds per wall-clock second")
	fs.IntVar(&o.Conns, "conns", 0, "multiplex the piles over N connections (default: one per pile, with its last will)")
	fs.DurationVar(&o.Interval, "interval", 10*time.Second, "reporting interval (simulated)")
	fs.DurationVar(&o.WarmInterval, "warm-interval", time.Second, "reporting interval while warm (simulated)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this much simulated time (default: run until interrupted)")
	fs.DurationVar(&o.SummaryEvery, "summary", 5*time.Second, "summary line interval (0: none)")
	fs.Var(&faults, "fault", "inject a fault: kind@site/pile[/port]@at[@key=value,...] (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nFlags of the fleet run:\n", synopsis)
		fs.PrintDefaults()
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := logger(stderr, *level)
	if err != nil {
		return err
	}
	o.Logger = log
	o.TelemetryQoS = byte(*qos)
	if *generate > 0 {
		o.Fleet = simulators.GenerateFleet(*generate, *ports)
	} else if o.Fleet, err = simulators.LoadFleet(*fleet); err != nil {
		return err
	}
	if *start != "" {
		if o.Start, err = time.Parse(time.RFC3339, *start); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	isSet := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { isSet[f.Name] = true })
	if isSet["min-c"] {
		o.Weather.MinC = minC
	}
	if isSet["max-c"] {
		o.Weather.MaxC = maxC
	}
	if *sun >= 0 {
		o.Weather.Sun = sun
	}
	for _, s := range faults {
		f, err := simulators.ParseFault(s)
		if err != nil {
			return err
		}
		o.Faults = append(o.Faults, f)
	}
	if *dry {
		if o.Duration <= 0 {
			o.Duration = time.Minute
		}
		return simulators.Simulate(o, o.Duration, func(e simulators.Emitted) {
			if e.Topic != "" {
				fmt.Fprintf(stdout, "%s %s\n", e.Topic, e.Payload)
			}
		})
	}
	if o.SummaryEvery > 0 {
		o.Summary = stderr
	}
	r, err := simulators.New(o)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

func runScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) (failed bool, err error) {
	fs := flag.NewFlagSet("pilesim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	root := fs.String("root", "", "topic root (default: the scenario's, or chargers)")
	level := fs.String("log-level", "warn", "log level")
	connect := fs.Duration("connect-timeout", 30*time.Second, "give up if the broker cannot be reached within this time")
	hold := fs.Bool("hold", false, "after the scenario, print its result and keep its piles online until Ctrl-C (one scenario)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pilesim run [flags] SCENARIO.yaml...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	files, err := parse(fs, args)
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		return false, errors.New("run: no scenario file")
	}
	if *hold && len(files) != 1 {
		return false, errors.New("run: --hold takes exactly one scenario file")
	}
	log, err := logger(stderr, *level)
	if err != nil {
		return false, err
	}
	// The piles retry their connections for ever, as real ones do; a
	// scenario against a broker that is not there is a mistake to report.
	if err := simulators.Reachable(ctx, *broker, *connect); err != nil {
		return false, fmt.Errorf("run: %w", err)
	}
	for _, f := range files {
		sc, err := simulators.LoadScenario(f)
		if err != nil {
			return false, err
		}
		if *root != "" {
			sc.Root = *root
		}
		fmt.Fprintf(stderr, "running %s (%v simulated at %gx)\n", sc.Name, sc.Duration, max(sc.Speed, 1))
		if *hold {
			err := simulators.HoldScenario(ctx, sc, *broker, log, func(res simulators.Result) {
				fmt.Fprintln(stdout, res)
				failed = !res.Passed()
				fmt.Fprintln(stderr, "scenario over; its piles stay online until Ctrl-C (--hold)")
			})
			return failed, err
		}
		res, err := simulators.RunScenario(ctx, sc, *broker, log)
		if err != nil {
			return false, err
		}
		fmt.Fprintln(stdout, res)
		failed = failed || !res.Passed()
	}
	return failed, nil
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pilesim load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o simulators.LoadOptions
	qos := fs.Uint("qos", 0, "telemetry QoS (0 or 1)")
	level := fs.String("log-level", "info", "log level")
	fs.StringVar(&o.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	fs.StringVar(&o.Root, "root", "chargers", "topic root")
	fs.IntVar(&o.Piles, "piles", 100, "number of piles")
	fs.IntVar(&o.Ports, "ports", 10, "ports per pile")
	fs.Float64Var(&o.Rate, "rate", 1000, "target telemetry messages per second, all piles together")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
	fs.Int64Var(&o.Messages, "messages", 0, "stop after this many telemetry messages in all, even before --duration (0: no limit); with a --rate beyond the broker's, a fixed load sent as fast as it takes it")
	fs.IntVar(&o.Conns, "conns", 0, "connections the piles share (default: one per pile)")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pilesim load [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := logger(stderr, *level)
	if err != nil {
		return err
	}
	o.Logger = log
	o.QoS = byte(*qos)
	res, err := simulators.Load(ctx, o)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}
