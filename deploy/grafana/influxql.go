package grafana

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// Format is how Grafana turns an InfluxQL answer into data frames.
type Format string

const (
	// FormatTimeSeries makes one frame per series (per GROUP BY tag set),
	// named by Query.Alias.
	FormatTimeSeries Format = "time_series"
	// FormatTable makes one table whose columns are the time, the GROUP BY
	// tags and the selected fields.
	FormatTable Format = "table"
)

// Query is one InfluxQL statement of a board: a panel's target, a template
// variable or an annotation. The text keeps Grafana's macros ($timeFilter,
// $__interval) and variables ($site, $pile, $port); Grafana substitutes them
// before it sends the statement to InfluxDB, and so does the integration test.
type Query struct {
	// ID names the query in test failures: "<board>/<what>".
	ID string
	// Text is the InfluxQL statement.
	Text string
	// Format is how Grafana reads the answer (panels only).
	Format Format
	// Alias names each series of a time-series query ("port $tag_port").
	Alias string
	// Columns are the columns every series of the answer has after "time",
	// in InfluxDB's order (SHOW TAG VALUES answers "key", "value").
	Columns []string
	// Tags are the GROUP BY tags every series of the answer carries.
	Tags []string
	// TextColumn and TagsColumns say which columns an annotation shows as its
	// text and its tags (annotations only).
	TextColumn  string
	TagsColumns []string
}

// Validate checks that the query is complete: an ID, a statement, and the
// columns a test can hold the answer to.
func (q Query) Validate() error {
	switch {
	case q.ID == "":
		return errors.New("query without ID")
	case strings.TrimSpace(q.Text) == "":
		return fmt.Errorf("query %s: no statement", q.ID)
	case len(q.Columns) == 0:
		return fmt.Errorf("query %s: no expected columns", q.ID)
	}
	if q.TextColumn != "" && !slices.Contains(q.Columns, q.TextColumn) {
		return fmt.Errorf("query %s: text column %q is not selected", q.ID, q.TextColumn)
	}
	for _, c := range q.TagsColumns {
		if !slices.Contains(q.Columns, c) {
			return fmt.Errorf("query %s: tags column %q is not selected", q.ID, c)
		}
	}
	return nil
}

// InfluxQuery is the target of Grafana's InfluxDB data source in InfluxQL
// mode with a raw query, as Grafana stores it in dashboard JSON. The
// foundation SDK ships no InfluxDB query type, so this is the SDK's custom
// query type (docs/How-To/custom-query-type.md of the SDK).
type InfluxQuery struct {
	RefID        string                `json:"refId"`
	Datasource   *common.DataSourceRef `json:"datasource,omitempty"`
	Hide         *bool                 `json:"hide,omitempty"`
	Query        string                `json:"query"`
	RawQuery     bool                  `json:"rawQuery"`
	ResultFormat Format                `json:"resultFormat,omitempty"`
	Alias        string                `json:"alias,omitempty"`

	// Annotation targets only: which columns make the event's text and tags
	// (a comma-separated list).
	FromAnnotations bool   `json:"fromAnnotations,omitempty"`
	TextColumn      string `json:"textColumn,omitempty"`
	TagsColumn      string `json:"tagsColumn,omitempty"`
}

// ImplementsDataqueryVariant marks InfluxQuery as a Grafana data query.
func (InfluxQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source plugin id.
func (InfluxQuery) DataqueryType() string { return "influxdb" }

// Validate refuses a target without a statement.
func (q InfluxQuery) Validate() error {
	if strings.TrimSpace(q.Query) == "" {
		return errors.New("influxdb target without a query")
	}
	return nil
}

// Equals reports whether other is the same target.
func (q InfluxQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(InfluxQuery)
	return ok && reflect.DeepEqual(q, o)
}

// influxTarget builds the panel target of q.
type influxTarget struct{ q InfluxQuery }

var _ cog.Builder[variants.Dataquery] = influxTarget{}

func (b influxTarget) Build() (variants.Dataquery, error) {
	if err := b.q.Validate(); err != nil {
		return nil, cog.MakeBuildErrors("influxdb", err)
	}
	return b.q, nil
}

// target returns the panel target of q with the given refId.
func target(refID string, q Query) influxTarget {
	return influxTarget{InfluxQuery{
		RefID:        refID,
		Datasource:   influxRef(),
		Query:        q.Text,
		RawQuery:     true,
		ResultFormat: q.Format,
		Alias:        q.Alias,
	}}
}

// annotationTarget returns the annotation target of q.
func annotationTarget(q Query) InfluxQuery {
	return InfluxQuery{
		RefID:           "Anno",
		Query:           q.Text,
		RawQuery:        true,
		ResultFormat:    FormatTable,
		FromAnnotations: true,
		TextColumn:      q.TextColumn,
		TagsColumn:      strings.Join(q.TagsColumns, ","),
	}
}
