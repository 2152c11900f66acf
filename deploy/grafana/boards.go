package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Board is one generated dashboard and the file it is committed as.
type Board struct {
	// File is the name under deploy/grafana/dashboards.
	File string
	// Dashboard is the built dashboard.
	Dashboard dashboard.Dashboard
}

// Boards builds every board, in a fixed order.
func Boards() ([]Board, error) {
	builders := []struct {
		file  string
		build func() *dashboard.DashboardBuilder
	}{
		{"fleet.json", fleetBoard},
		{"site.json", siteBoard},
		{"port.json", portBoard},
		{"health.json", healthBoard},
	}
	boards := make([]Board, 0, len(builders))
	for _, b := range builders {
		d, err := b.build().Build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", b.file, err)
		}
		numberPanels(&d)
		defaultPlacement(&d)
		boards = append(boards, Board{File: b.file, Dashboard: d})
	}
	return boards, nil
}

// numberPanels gives every panel and row a unique id in layout order, which
// Grafana needs and the SDK leaves to the caller.
func numberPanels(d *dashboard.Dashboard) {
	id := uint32(0)
	next := func() *uint32 { id++; v := id; return &v }
	for i := range d.Panels {
		p := &d.Panels[i]
		switch {
		case p.Panel != nil:
			p.Panel.Id = next()
		case p.RowPanel != nil:
			p.RowPanel.Id = *next()
			for j := range p.RowPanel.Panels {
				p.RowPanel.Panels[j].Id = next()
			}
		}
	}
}

// defaultPlacement drops the SDK's "inControlsMenu" placement of annotation
// toggles and board links, so Grafana shows them above the panels, where an
// operator sees at once which markers are on.
func defaultPlacement(d *dashboard.Dashboard) {
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
}

// JSON is the board as it is committed: indented, with a final newline.
// encoding/json writes struct fields in order and map keys sorted, so the
// same board always gives the same bytes.
func (b Board) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b.Dashboard); err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.File, err)
	}
	return buf.Bytes(), nil
}

// Write writes every board into dir (deploy/grafana/dashboards).
func Write(dir string) error {
	boards, err := Boards()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, b := range boards {
		data, err := b.JSON()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, b.File)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
