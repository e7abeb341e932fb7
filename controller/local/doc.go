// Package local owns the per-datacenter local controller of ScalIMS: the
// registry of this datacenter's VNF instances and their states, the
// statistics intake and overload detection, reactive scale-out (paper 4.3),
// the per-VNF buffer queue (4.2), failure detection and replacement (with a
// crash-loop backoff per slot, crash.go), and the
// participant side of the 5-step interval protocol (Handle, 4.2 steps 2, 4,
// 5). It talks to the cloud only through drivers.Driver, to routing only
// through the small PathStore and InstanceSink interfaces declared here, and
// to time only through clock.Clock: everything happens on the clock's 1 s
// tick, on per-instance watchdog timers and in method calls, so the same code
// runs in the daemon (real clock) and in the simulator (virtual clock).
//
// Instance states (the controller's view; the cloud's own state is kept in
// Instance.CloudState):
//
//	        launch (proactive / reactive / replacement)
//	                      │
//	                      ▼
//	                 ┌─────────┐  driver error, gone
//	                 │ booting ├────────────────────────────┐
//	                 └────┬────┘                            │
//	             active   │                                 │
//	                      ▼                                 ▼
//	≥2 metrics over  ┌─────────┐ stats timeout,       ┌────────┐ terminate
//	threshold for W  │ normal  ├──driver error, gone─▶│ failed ├──────────▶ (removed)
//	     ┌───────────┤         │                      └────────┘     ▲
//	     ▼           └──┬───▲──┘                           ▲         │
//	┌──────────┐        │   │ reuse from the tail          │         │
//	│ overload ├────────┤   │ (proactive/reactive/         │         │
//	└──────────┘ <2 over│   │  replacement)                │         │
//	     scale-in (least│   │                              │         │
//	     loaded first)  ▼   │                              │         │
//	                 ┌──────┴───┐  failure ───────────────-┘         │
//	                 │ buffered │                                    │
//	                 └────┬─────┘                                    │
//	 enter interval, τ old│ (popped from the head)                   │
//	                      ▼                                          │
//	                 ┌──────────┐  flows = 0: destroy (expiry)       │
//	                 │ draining ├────────────────────────────────────┘
//	                 └──────────┘
//
// Working instances are booting + normal + overload (the plan counts booting
// ones as working); only normal and overload instances that the cloud
// reports active are routable; new flows avoid overloaded ones while normal
// ones exist. A buffered instance gets no new flows and keeps its old ones;
// a buffered instance may still be booting (scaled in before it came up) and
// is reused as booting.
//
// Every scale action (create, reuse, buffer, destroy, replace) is recorded
// with its reason (proactive, reactive, replacement, expiry, failure) in a
// bounded history (Actions) and logged, one line per action.
package local
