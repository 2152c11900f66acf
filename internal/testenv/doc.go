// Package testenv starts the real servers that chargeguard's integration
// tests talk to: Mosquitto, InfluxDB 1.8 and Prometheus Alertmanager.
//
// Each server runs as a child process of the test binary, listens only on
// 127.0.0.1 on a free port, keeps its files in t.TempDir(), and is stopped by
// t.Cleanup, signalled only by its own PID. Its output goes to a file in that
// directory, and the tail of that file is logged when the test failed, so a
// failing CI run shows what the server said.
//
//	func TestIngest(t *testing.T) {
//		broker := testenv.Mosquitto(t)   // skipped under go test -short
//		influx := testenv.Influx(t)
//		// ... run chargeguard against broker.URL and influx.URL ...
//		require.Eventually(t, func() bool {
//			return influx.Count(t, "port") >= 10
//		}, 10*time.Second, 50*time.Millisecond)
//	}
//
// The servers are integration-test dependencies, not mocks: a constructor
// calls Integration first, so `go test -short` skips the test, and otherwise
// a missing binary fails the test with a message saying how to install it
// (`make test` runs scripts/install-deps.sh). Tests never skip because a
// server is missing: a skipped safety test looks like a passing one.
//
// The Mosquitto broker runs with the tuning section of
// deploy/mosquitto/mosquitto.conf, so tests see the production queue and
// in-flight limits. Stop, Kill and Start let tests exercise restarts and
// crashes: Start brings a server back on the same port with the same data.
//
// The helpers call t.Fatal and must run on the test's goroutine, except the
// query helpers (InfluxServer.Query, InfluxServer.Count,
// AlertmanagerServer.Alerts), which report errors with t.Errorf so they can
// be polled from require.Eventually.
package testenv
