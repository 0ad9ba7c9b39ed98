package reports

import (
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// LoadShared is the verification of a run's shared subscriptions
// (--shared-group): per group, what its members received together and how
// evenly the broker spread it over them.
type LoadShared struct {
	Groups []LoadSharedGroup `json:"groups"`
}

// LoadSharedGroup is one shared group: every $share/NAME/filter its
// members subscribed, judged per publisher as one stream whose
// deliveries are the union of the members'.
type LoadSharedGroup struct {
	Name    string   `json:"name"`
	Filters []string `json:"filters"` // the whole $share/NAME/... filters
	Members int      `json:"members"`
	QoS     int      `json:"qos"` // due: min(published, granted)
	// Streams are (subscription, publisher) pairs; Unjudged of them come
	// from publishers whose ledger is not here (another shard's).
	Streams   int    `json:"streams"`
	Unjudged  int    `json:"unjudged,omitempty"`
	Sent      uint64 `json:"sent"`
	Confirmed uint64 `json:"confirmed"`
	Received  uint64 `json:"received"` // distinct messages over the group
	Lost      uint64 `json:"lost"`
	// LostExcused were lost while a member's session was lost.
	LostExcused uint64 `json:"lost_session_lost,omitempty"`
	// Duplicates are copies beyond the first over the whole group, one
	// member's repeats and other members' alike.
	Duplicates uint64 `json:"duplicates"`
	// DuplicatesExcused says a member lost its connection, which lets
	// the broker hand its unacknowledged QoS 0/1 messages to another
	// member (§4.8.2): the duplicates are then not violations.
	DuplicatesExcused bool   `json:"duplicates_excused,omitempty"`
	Downgraded        uint64 `json:"downgraded,omitempty"`
	Unexpected        uint64 `json:"unexpected,omitempty"` // from publishers the filter does not match
	// Spread: deliveries per member, in subscriber order, and their
	// statistics. CV is the coefficient of variation (standard deviation
	// over mean, 0 for a perfectly even spread); MaxOverMean 1 is even.
	PerMember   []uint64 `json:"per_member"`
	Min         uint64   `json:"min"`
	Max         uint64   `json:"max"`
	Mean        float64  `json:"mean"`
	CV          float64  `json:"cv"`
	MaxOverMean float64  `json:"max_over_mean"`
	Violations  []string `json:"violations,omitempty"`
}

// LoadRequestResponse counts a request/response run (--responders):
// every PUBLISH is a request with a Response Topic and Correlation Data,
// answered by a responder group.
type LoadRequestResponse struct {
	Responders int    `json:"responders"`
	QoS        int    `json:"qos"`      // of the requests
	Requests   uint64 `json:"requests"` // sent, refused ones left out
	Confirmed  uint64 `json:"confirmed"`
	Answered   uint64 `json:"answered"` // requests answered at least once
	Unanswered uint64 `json:"unanswered"`
	// UnansweredConfirmed are unanswered requests the broker had
	// acknowledged: at QoS 1/2 a violation unless a connection dropped.
	UnansweredConfirmed uint64 `json:"unanswered_confirmed"`
	DuplicateAnswers    uint64 `json:"duplicate_answers,omitempty"`
	// WrongCorrelation are responses whose Correlation Data names no
	// request of this publisher: a broker forwards it unaltered
	// (MQTT-3.3.2-16), and the responder copies it.
	WrongCorrelation uint64 `json:"wrong_correlation,omitempty"`
	// Dropped says a requester's or responder's connection dropped.
	Dropped    bool     `json:"dropped,omitempty"`
	Violations []string `json:"violations,omitempty"`
}

// verdict is "ok", or "VIOLATION" with violations.
func verdict(violations []string) string {
	if len(violations) > 0 {
		return "VIOLATION"
	}
	return "ok"
}

// WriteSharedTable prints the shared groups and the request/response
// counts of a run, if it had them.
func WriteSharedTable(w io.Writer, l *Load) {
	if s := l.Shared; s != nil && len(s.Groups) > 0 {
		t := newLoadTable(w)
		t.Header("Shared group", "Members", "QoS", "Received", "Lost", "Lost (session lost)", "Duplicates", "Per member min / mean / max", "CV", "Verdict")
		for _, g := range s.Groups {
			dup := fmt.Sprint(g.Duplicates)
			if g.DuplicatesExcused && g.Duplicates > 0 {
				dup += " (a member dropped)"
			}
			t.Append(g.Name, fmt.Sprint(g.Members), fmt.Sprint(g.QoS), fmt.Sprint(g.Received), fmt.Sprint(g.Lost), //nolint:errcheck
				fmt.Sprint(g.LostExcused), dup, fmt.Sprintf("%d / %.1f / %d", g.Min, g.Mean, g.Max),
				strconv.FormatFloat(g.CV, 'f', 3, 64), verdict(g.Violations))
		}
		t.Render() //nolint:errcheck
	}
	if r := l.RequestResponse; r != nil {
		t := newLoadTable(w)
		t.Header("Request/response", "Value")
		for _, row := range requestResponseRows(r) {
			t.Append(row[0], row[1]) //nolint:errcheck
		}
		t.Append("verdict", verdict(r.Violations)) //nolint:errcheck
		t.Render()                                 //nolint:errcheck
	}
}

func requestResponseRows(r *LoadRequestResponse) [][2]string {
	return [][2]string{
		{"responders, request QoS", fmt.Sprintf("%d, %d", r.Responders, r.QoS)},
		{"requests sent / confirmed", fmt.Sprintf("%d / %d", r.Requests, r.Confirmed)},
		{"answered / unanswered (of them confirmed)", fmt.Sprintf("%d / %d (%d)", r.Answered, r.Unanswered, r.UnansweredConfirmed)},
		{"duplicate answers, wrong correlation data", fmt.Sprintf("%d, %d", r.DuplicateAnswers, r.WrongCorrelation)},
	}
}

var sharedTemplate = template.Must(template.New("shared").Parse(`
{{with .S}}{{if .Groups}}<h3>Shared subscriptions</h3>
<table class="list shared">
<thead><tr><th>Group</th><th>Members</th><th>QoS</th><th>Streams</th><th>Confirmed</th><th>Received</th><th>Lost</th><th>Lost (session lost)</th><th>Duplicates</th><th>Per member min / mean / max</th><th>CV</th><th>max/mean</th><th>Verdict</th></tr></thead>
<tbody>{{range .Groups}}<tr><th scope="row" title="{{range $i, $f := .Filters}}{{if $i}} {{end}}{{$f}}{{end}}">{{.Name}}</th><td>{{.Members}}</td><td>{{.QoS}}</td><td>{{.Streams}}</td><td>{{.Confirmed}}</td><td>{{.Received}}</td><td>{{.Lost}}</td><td>{{.LostExcused}}</td><td>{{.Duplicates}}{{if and .DuplicatesExcused .Duplicates}} (a member dropped){{end}}</td><td>{{.Min}} / {{printf "%.1f" .Mean}} / {{.Max}}</td><td>{{printf "%.3f" .CV}}</td><td>{{printf "%.2f" .MaxOverMean}}</td><td>{{if .Violations}}<span class="st st-failed">violation</span>{{else}}<span class="st st-passed">ok</span>{{end}}</td></tr>{{end}}</tbody>
</table>{{end}}{{end}}
{{with .R}}<h3>Request/response</h3>
<dl class="meta wide">{{range $.Rows}}<div><dt>{{index . 0}}</dt><dd>{{index . 1}}</dd></div>{{end}}
<div><dt>verdict</dt><dd>{{if .Violations}}<span class="st st-failed">violation</span>{{else}}<span class="st st-passed">ok</span>{{end}}</dd></div></dl>{{end}}`))

// SharedHTML is the shared-subscription and request/response section of
// l's page: empty when the run had neither.
func (l *Load) SharedHTML() (template.HTML, error) {
	if (l.Shared == nil || len(l.Shared.Groups) == 0) && l.RequestResponse == nil {
		return "", nil
	}
	var rows [][2]string
	if l.RequestResponse != nil {
		rows = requestResponseRows(l.RequestResponse)
	}
	var b strings.Builder
	err := sharedTemplate.Execute(&b, struct {
		S    *LoadShared
		R    *LoadRequestResponse
		Rows [][2]string
	}{l.Shared, l.RequestResponse, rows})
	return template.HTML(b.String()), err
}
