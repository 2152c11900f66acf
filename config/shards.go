package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Shard is one replica set's configuration, for CheckShards.
type Shard struct {
	File   string // where it came from, named in every finding
	Config Config
}

// LoadShard reads a replica set's configuration for CheckShards: the file
// over the defaults, without Validate, which would also check files
// (TLS, tokens) that exist only where the replica set runs. Its site ids
// are checked by CheckShards.
func LoadShard(path string) (Shard, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return Shard{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := Parse(b, &cfg); err != nil {
		return Shard{}, fmt.Errorf("config %s: %w", path, err)
	}
	return Shard{File: path, Config: cfg}, nil
}

// CheckShards checks that the shards of a district split its sites: no
// site in two shards' mqtt.sites, no shard of every site beside other
// shards, each shard under its own cluster.prefix and all under one
// cluster.shards_prefix, and, given district (every site id of the
// district; nil: not checked), no site in no shard and no shard site
// outside the district (a typo: the real site is then in no shard).
// Every finding names the file and the field; none means the split is
// sound.
func CheckShards(shards []Shard, district []string) []error {
	var errs []error
	bad := func(file, field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %w", file, &FieldError{Field: field, Err: fmt.Errorf(format, a...)}))
	}
	type place struct {
		file  string
		index int
	}
	where := map[string]place{} // site -> its first listing
	prefixes := map[string]string{}
	for _, sh := range shards {
		c := sh.Config
		if len(c.MQTT.Sites) == 0 {
			if len(shards) > 1 {
				bad(sh.File, "mqtt.sites", "empty: this process guards every site, so every site of the other %d shards is guarded twice", len(shards)-1)
			}
		}
		for i, site := range c.MQTT.Sites {
			field := fmt.Sprintf("mqtt.sites[%d]", i)
			switch p, dup := where[site]; {
			case !telemetry.ValidID(site):
				bad(sh.File, field, "%q must match [A-Za-z0-9_-]{1,64} (a site id)", site)
			case dup && p.file == sh.File:
				bad(sh.File, field, "%q is already mqtt.sites[%d]", site, p.index)
			case dup:
				bad(sh.File, field, "site %q is also in %s mqtt.sites[%d]: two shards' leaders would both send its commands", site, p.file, p.index)
			default:
				where[site] = place{sh.File, i}
			}
		}
		if c.Cluster.Enabled() {
			if other, ok := prefixes[c.Cluster.Prefix]; ok {
				bad(sh.File, "cluster.prefix", "%s is also the prefix of %s: the two replica sets would elect one leader between them", c.Cluster.Prefix, other)
			} else {
				prefixes[c.Cluster.Prefix] = sh.File
			}
			if first := firstClustered(shards); first != nil && c.Cluster.ShardsPrefix != first.Config.Cluster.ShardsPrefix {
				bad(sh.File, "cluster.shards_prefix", "%s, but %s has %s: the shards would not see each other's claims", c.Cluster.ShardsPrefix, first.File, first.Config.Cluster.ShardsPrefix)
			}
		}
	}
	if district == nil {
		return errs
	}
	all := false
	for _, sh := range shards {
		all = all || len(sh.Config.MQTT.Sites) == 0
	}
	inDistrict := map[string]bool{}
	var missing []string
	for _, site := range district {
		inDistrict[site] = true
		if _, ok := where[site]; !ok && !all {
			missing = append(missing, site)
		}
	}
	for _, site := range missing {
		errs = append(errs, fmt.Errorf("site %q is in no shard's mqtt.sites: nothing guards it (add it to exactly one)", site))
	}
	var extra []string
	for site := range where {
		if !inDistrict[site] {
			extra = append(extra, site)
		}
	}
	sort.Strings(extra)
	for _, site := range extra {
		p := where[site]
		bad(p.file, fmt.Sprintf("mqtt.sites[%d]", p.index), "site %q is not a site of the district (--sites): a typo leaves the real site in no shard", site)
	}
	return errs
}

func firstClustered(shards []Shard) *Shard {
	for i := range shards {
		if shards[i].Config.Cluster.Enabled() {
			return &shards[i]
		}
	}
	return nil
}

// ParseSiteList reads the site ids of a district: one a line (or several
// separated by commas or spaces), # starts a comment. source names where
// they came from in errors.
func ParseSiteList(source, text string) ([]string, error) {
	var sites []string
	var errs []error
	seen := map[string]int{}
	for n, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, site := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			switch prev, dup := seen[site]; {
			case !telemetry.ValidID(site):
				errs = append(errs, fmt.Errorf("%s line %d: %q is not a site id ([A-Za-z0-9_-]{1,64})", source, n+1, site))
			case dup:
				errs = append(errs, fmt.Errorf("%s line %d: site %q is already on line %d", source, n+1, site, prev))
			default:
				seen[site] = n + 1
				sites = append(sites, site)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(sites) == 0 {
		return nil, fmt.Errorf("%s: no site id in it", source)
	}
	return sites, nil
}
