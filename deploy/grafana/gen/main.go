// Command gen writes chargeguard's Grafana dashboards as JSON into
// deploy/grafana/dashboards, where Grafana's provisioning picks them up.
//
// Run it from the repository root after changing a board:
//
//	go run ./deploy/grafana/gen
//
// The output depends only on the code, so running it twice gives the same
// files; a test in deploy/grafana fails when the committed files are stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chargeguard/chargeguard/deploy/grafana"
)

func main() {
	out := flag.String("out", "deploy/grafana/dashboards", "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := grafana.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
