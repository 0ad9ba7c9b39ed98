package suites

import (
	"errors"
	"hash/fnv"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

func init() {
	addSection("4.8", "Handling errors", func(s *S) {
		// On a protocol violation the server closes the network
		// connection the offending packet came on, unless the
		// specification says otherwise (a refusal code, a limit it may
		// wait on). Whatever one client sends, the server goes on
		// serving others: a fresh connection is accepted afterwards.
		// One spec per malformed class of packetgen, the case drawn from
		// the run's seed; its name cites the rule the case breaks.
		for _, mc := range packetgen.MalformedClasses(s.cfg.Version) {
			h := fnv.New64a()
			h.Write([]byte(mc.Name)) //nolint:errcheck // hashing cannot fail
			k, err := packetgen.NewGen(s.cfg.Seed^h.Sum64(), s.cfg.Version).Malformed(mc.Name)
			if err != nil {
				panic("suites: " + err.Error())
			}
			ids, text := "MQTT-4.8.0-1", ""
			if r := citedRule(k.Rule); r != "" && r != ids {
				ids += " " + r
			}
			switch k.Expect {
			case packetgen.ExpectClose:
				text = "closes the connection on " + mc.Name + " (" + mc.Desc + ")"
			case packetgen.ExpectRefuse:
				text = "refuses or closes the connection on " + mc.Name + " (" + mc.Desc + ")"
			case packetgen.ExpectWaitOrClose:
				text = "waits or closes the connection on " + mc.Name + " (" + mc.Desc + "), and keeps serving others"
			case packetgen.ExpectAccept:
				// Unusual but valid input: no violation, so only the
				// rule the case exercises is cited.
				ids, text = citedRule(k.Rule), "keeps serving after "+mc.Name+" ("+mc.Desc+")"
			}
			s.Spec(ids, text, Label("malformed"), func(w *World) { checkMalformed(w, k) })
		}
	})
	notTestable("MQTT-4.8.0-2", "a transient error (such as a full internal buffer) cannot be caused from the wire "+
		"in a broker-neutral way; specs of section 4.8 only check that the server serves a fresh connection after each malformed input")
}

// citedRule is the statement ID a case's rule is cited as: the 3.1.1 text
// misprints MQTT-3.8.3-4 as "MQTT-3-8.3-4".
func citedRule(rule string) string {
	if rule == "MQTT-3-8.3-4" {
		return "MQTT-3.8.3-4"
	}
	return rule
}

// checkMalformed sends one malformed case where its phase says and judges
// the broker's answer by the case's expectation, then requires the broker
// to serve a fresh connection.
func checkMalformed(w *World, k packetgen.Case) {
	var c *Client
	if k.Phase == packetgen.PhaseFirst {
		c = w.Dial("malformed")
	} else {
		c = w.Connect("malformed")
	}
	// A broker may close while a long case is still being written; the
	// close is judged below, so a write error only matters for a case it
	// must accept.
	if err := c.SendRaw(k.Bytes, k.String()); err != nil && k.Expect == packetgen.ExpectAccept {
		w.Failf("expected the broker to take %s; the write failed: %v", k, err)
	}
	switch k.Expect {
	case packetgen.ExpectClose:
		c.ExpectClosed(k.Detail)
	case packetgen.ExpectRefuse:
		expectRefusal(c, k)
	case packetgen.ExpectWaitOrClose:
		p, err := c.Recv(w.cfg.Quiet)
		if err == nil {
			w.Failf("expected the broker to wait for the rest of the packet or close the connection (%s); got %s",
				k.Detail, packetgen.Format(p))
		}
		if !errors.Is(err, wire.ErrTimeout) && !errors.Is(err, wire.ErrClosed) {
			w.Failf("expected the broker to wait or close the connection (%s); got %s", k.Detail, describeErr(err))
		}
	case packetgen.ExpectAccept:
		c.MustSend(&packetgen.Pingreq{})
		for {
			p := c.NextAnswer("PINGRESP after " + k.Detail)
			if _, ok := p.(*packetgen.Pingresp); ok {
				break
			}
			if _, ok := p.(*packetgen.Puback); !ok {
				w.Failf("expected PUBACK or PINGRESP after %s; got %s", k.Detail, packetgen.Format(p))
			}
		}
	}
	fresh := w.Connect("fresh")
	fresh.Ping()
}

// expectRefusal accepts a refusing CONNACK (followed by the close that
// MQTT-3.2.2-5 requires), a SUBACK of failure codes only, or a close.
func expectRefusal(c *Client, k packetgen.Case) {
	w := c.w
	p, err := c.Recv(w.cfg.Timeout + w.cfg.Grace)
	switch {
	case errors.Is(err, wire.ErrClosed):
		return
	case err != nil:
		// The refusal may be an answer still on its way.
		w.ifNoAnswer(err, "a refusal or the connection closed ("+k.Detail+")", c.Name)
		w.Failf("expected a refusal or the connection closed (%s); got %s", k.Detail, describeErr(err))
	}
	switch p := p.(type) {
	case *packetgen.Connack:
		if p.ReasonCode != 0 {
			c.ExpectClosed("after a CONNACK with a non-zero return code")
			return
		}
	case *packetgen.Suback:
		refused := len(p.ReasonCodes) > 0
		for _, rc := range p.ReasonCodes {
			refused = refused && rc == packetgen.SubackFailure
		}
		if refused {
			return
		}
	}
	w.Failf("expected a refusal (CONNACK with a non-zero return code, SUBACK 0x80) or the connection closed (%s); got %s",
		k.Detail, packetgen.Format(p))
}
