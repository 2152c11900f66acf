package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownField is yaml.v3's text for a key that no field of the type takes.
var unknownField = regexp.MustCompile(`^(line \d+): field (\S+) not found in type (\S+)$`)

// explainUnknownKeys rewrites yaml.v3's "field x not found in type
// alerting.Thresholds" into the key and the keys that section does take, so
// a typo can be fixed without reading the source. Other errors pass as
// they are.
func explainUnknownKeys(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	keys := sectionKeys()
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = m
		if g := unknownField.FindStringSubmatch(m); g != nil {
			if valid, ok := keys[g[3]]; ok {
				msgs[i] = fmt.Sprintf("%s: unknown key %q; this section takes: %s", g[1], g[2], strings.Join(valid, ", "))
			}
		}
	}
	return fmt.Errorf("yaml: %s", strings.Join(msgs, "; "))
}

// sectionKeys maps every struct type the config file decodes into (by the
// name yaml.v3 uses for it) to its YAML keys, sorted.
func sectionKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || out[t.String()] != nil {
			return
		}
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			keys = append(keys, name)
		}
		slices.Sort(keys)
		out[t.String()] = keys
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	return out
}
