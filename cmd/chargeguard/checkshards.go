package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chargeguard/chargeguard/config"
)

// checkShards is `chargeguard check-shards [--sites FILE|LIST] a.yaml
// b.yaml ...`: it checks that the replica sets' configurations split the
// district's sites (config.CheckShards) and prints one line per finding.
// Exit status 0: none; 1: findings; 2: bad usage or an unreadable file.
func checkShards(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chargeguard check-shards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sitesArg := fs.String("sites", "", "every site id of the district: a file (one a line, # comments) or a comma-separated list; then a site in no shard is a finding")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chargeguard check-shards [--sites FILE|LIST] SHARD.yaml...\n\n"+
			"Checks that no site is in two shards' mqtt.sites, that every shard has its own\n"+
			"cluster.prefix and all share cluster.shards_prefix, and, with --sites, that every\n"+
			"site of the district is in a shard. Exit status 1 on any finding.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "chargeguard check-shards: name the configuration file of every shard")
		fs.Usage()
		return 2
	}
	var district []string
	if *sitesArg != "" {
		source, text := "--sites", strings.ReplaceAll(*sitesArg, ",", "\n")
		if b, err := os.ReadFile(*sitesArg); err == nil {
			source, text = *sitesArg, string(b)
		} else if strings.ContainsAny(*sitesArg, "/.") {
			// Meant as a file (a site id holds neither): say why it is not read.
			fmt.Fprintf(stderr, "chargeguard check-shards: --sites: %v\n", err)
			return 2
		}
		var err error
		if district, err = config.ParseSiteList(source, text); err != nil {
			fmt.Fprintf(stderr, "chargeguard check-shards: %v\n", err)
			return 2
		}
	}
	var shards []config.Shard
	for _, path := range fs.Args() {
		sh, err := config.LoadShard(path)
		if err != nil {
			fmt.Fprintf(stderr, "chargeguard check-shards: %v\n", err)
			return 2
		}
		shards = append(shards, sh)
	}
	findings := config.CheckShards(shards, district)
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(stderr, "chargeguard check-shards: %d finding(s)\n", len(findings))
		return 1
	}
	sites, all := 0, false
	for _, sh := range shards {
		sites += len(sh.Config.MQTT.Sites)
		all = all || len(sh.Config.MQTT.Sites) == 0
	}
	msg := fmt.Sprintf("ok: %d shard(s), %d site(s), each in exactly one shard", len(shards), sites)
	if all {
		msg = "ok: one replica set of every site (no mqtt.sites), no other shard"
	}
	if district == nil {
		msg += " (no --sites: sites in no shard not checked)"
	}
	fmt.Fprintln(stdout, msg)
	return 0
}
