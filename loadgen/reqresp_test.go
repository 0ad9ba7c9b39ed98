package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

func rrScenario(qos packetgen.QoS, subs int) Scenario {
	sc := quick(3, subs, qos, "req/{p}")
	sc.Protocol = packetgen.V5
	sc.Responders = 2
	return sc
}

// Every request is answered once, by one responder of the group, and its
// round trip recorded; subscribers of the request topics still get every
// message.
func TestRequestResponse(t *testing.T) {
	for _, qos := range []packetgen.QoS{0, 1, 2} {
		t.Run("qos"+itoa(int(qos)), func(t *testing.T) {
			res, err := Run(context.Background(), rrScenario(qos, 3), Options{})
			if err != nil {
				t.Fatal(err)
			}
			l := res.Summary
			r := l.RequestResponse
			if r == nil || r.Requests == 0 || r.Requests != l.Messages.Sent || r.Answered != r.Requests || r.Unanswered != 0 ||
				r.DuplicateAnswers != 0 || r.WrongCorrelation != 0 || r.Responders != 2 {
				t.Fatalf("request/response %+v, sent %d", r, l.Messages.Sent)
			}
			if qos > 0 && (r.Confirmed != r.Requests || r.UnansweredConfirmed != 0) {
				t.Errorf("confirmed %d of %d, unanswered confirmed %d", r.Confirmed, r.Requests, r.UnansweredConfirmed)
			}
			if h := res.Histograms["request_response"]; h.TotalCount() != int64(r.Answered) {
				t.Errorf("request_response histogram holds %d, answered %d", h.TotalCount(), r.Answered)
			}
			if m := l.Messages; m.Received != m.Expected || m.Expected != m.Sent || len(l.Violations) != 0 {
				t.Errorf("messages %+v, violations %q", m, l.Violations)
			}
			if l.Connections.Target != 8 || l.Connections.Ready != 8 {
				t.Errorf("connections %+v: want 3 publishers + 3 subscribers + 2 responders ready", l.Connections)
			}
		})
	}
}

// A response whose Correlation Data names no request of the publisher is
// a violation: here an intruder publishes such responses to publisher 0's
// Response Topic throughout the run.
func TestRequestResponseWrongCorrelation(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	dial := PipeDialer(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := dial(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	enc := packetgen.Encoder{Version: packetgen.V5, Side: packetgen.FromClient}
	b, err := enc.Append(nil, &packetgen.Connect{ProtocolLevel: packetgen.V5, CleanStart: true, ClientID: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	go func() { // the broker's CONNACK and whatever else: drain it
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub := &packetgen.Publish{Topic: []byte(responseTopic("0000feed", 0))}
		pub.Properties.Set(packetgen.PropCorrelationData, make([]byte, corrSize)) // run id 0: not this run's
		pkt, _ := enc.Append(nil, pub)
		for ctx.Err() == nil {
			if _, err := conn.Write(pkt); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	sc := rrScenario(1, 0)
	sc.Duration = 500 * time.Millisecond
	res, err := Run(ctx, sc, Options{Dial: dial, RunID: 0xfeed})
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	l := res.Summary
	r := l.RequestResponse
	if r.WrongCorrelation == 0 || r.Answered != r.Requests || !strings.Contains(strings.Join(l.Violations, "\n"), "Correlation Data that names no request") {
		t.Errorf("request/response %+v, violations %q", r, l.Violations)
	}
}

// Unanswered confirmed requests are a violation at QoS 1/2 unless a
// connection dropped; wrong Correlation Data always is.
func TestJudgeRequestResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    reports.LoadRequestResponse
		want int
	}{
		{"clean", reports.LoadRequestResponse{QoS: 1}, 0},
		{"unanswered", reports.LoadRequestResponse{QoS: 1, UnansweredConfirmed: 3}, 1},
		{"unanswered after a drop", reports.LoadRequestResponse{QoS: 1, UnansweredConfirmed: 3, Dropped: true}, 0},
		{"unanswered at QoS 0", reports.LoadRequestResponse{QoS: 0, UnansweredConfirmed: 3}, 0},
		{"wrong correlation", reports.LoadRequestResponse{QoS: 0, WrongCorrelation: 1, Dropped: true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &reports.Load{RequestResponse: &tc.r}
			judgeRequestResponse(l)
			if len(l.Violations) != tc.want || len(l.RequestResponse.Violations) != tc.want {
				t.Errorf("violations %q, want %d", l.Violations, tc.want)
			}
			l.Interrupted, l.Violations = true, nil
			if judgeRequestResponse(l); len(l.Violations) != 0 {
				t.Errorf("interrupted: violations %q", l.Violations)
			}
		})
	}
}

func TestResponderScenario(t *testing.T) {
	sc := rrScenario(1, 0)
	if f := sc.responderFilter(); f != "req/+" {
		t.Errorf("responder filter %q", f)
	}
	sc.Topic = "a/x{p}y/{i}/b"
	if f := sc.responderFilter(); f != "a/+/+/b" {
		t.Errorf("responder filter %q", f)
	}
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"3.1.1", func(s *Scenario) { s.Protocol = packetgen.V311 }, "request/response needs MQTT 5.0"},
		{"negative", func(s *Scenario) { s.Responders = -1 }, "cannot be negative"},
		{"no publishers", func(s *Scenario) { s.Publishers = 0 }, "give at least one"},
		{"connections", func(s *Scenario) { s.Connections = 4 }, "fewer than publishers + subscribers + responders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rrScenario(1, 0)
			tc.edit(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
