package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
)

// riseAt3 is a day that rises tenfold from local hour 2 to 3.
func riseAt3() []float64 {
	r := make([]float64, global.HoursPerDay)
	for h := range r {
		r[h] = 10
	}
	r[0], r[1], r[2] = 1, 1, 1
	return r
}

// declaredProfile is policy.declaredProfile for every DC of the default
// config, UTC; the test hook makes its hours 10 s (a daemon refuses
// policy.declaredProfile.hour other than 1h): the daemon's virtual clock
// starts at 08:00 UTC, profile hour 0 of a day (1.8e9 s / 10 s is a
// multiple of 24), so the profile rises 20–30 s in.
func declaredProfile(c *Config) *global.ProfileConfig {
	c.Policy.testProfileHour = 10 * time.Second
	p := &global.ProfileConfig{CallDuration: "30s"}
	for _, dc := range c.dcNames() {
		p.DCs = append(p.DCs, global.DCProfileConfig{DC: dc, UTCOffset: new(float64), Rates: riseAt3()})
	}
	return p
}

// profileForecasts runs d 40 s on clk and counts its rounds' forecasts
// set by the declared profile's rule.
func profileForecasts(d *Daemon, clk *clock.Virtual) int {
	for s := 0; s < 40; s++ {
		clk.Advance(time.Second)
	}
	n := 0
	for _, r := range d.engine.Records() {
		for _, fc := range r.Forecasts {
			if fc.Rule == global.RuleProfile {
				n++
			}
		}
	}
	return n
}

// The daemon's global controller plans with the policy's declared
// profile: some round's forecast is set by the profile's rule; without the
// field none is.
func TestDaemonPlansWithDeclaredProfile(t *testing.T) {
	count := func(declare bool) int {
		d, clk, _ := simDaemon(t, func(c *Config) {
			if declare {
				c.Policy.DeclaredProfile = declaredProfile(c)
			}
		})
		return profileForecasts(d, clk)
	}
	if n := count(true); n == 0 {
		t.Fatal("no forecast planned by the declared profile")
	}
	if n := count(false); n != 0 {
		t.Fatalf("%d forecasts planned by a profile nobody declared", n)
	}
}

// policy.declaredProfile: a profile file in the shared profiles' format,
// and errors that name the field.
func TestConfigDeclaredProfile(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "audio.csv")
	var lines []string
	for h := 0; h < 24; h++ {
		lines = append(lines, string(rune('0'+h/10))+string(rune('0'+h%10))+", 0.0"+string(rune('1'+h%9)))
	}
	if err := os.WriteFile(csv, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := string(DefaultYAML())
	profile := `
  declaredProfile:
    callDuration: 90s
    dcs:
      - {dc: tokyo, utcOffset: 9, file: ` + csv + `, peak: 15}
      - {dc: hong-kong, utcOffset: 8, file: ` + csv + `}
      - {dc: london, timeZone: Europe/London, rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]}
      - {dc: houston, utcOffset: -6, rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]}
`
	with := func(p string) string {
		return strings.Replace(base, "  improveBudget: 1000\n", "  improveBudget: 1000"+p, 1)
	}
	c, err := ParseConfig([]byte(with(profile)))
	if err != nil {
		t.Fatal(err)
	}
	pr := c.Policy.profilePrior()
	if pr == nil || pr.CallDuration != 90*time.Second || !pr.Origin.Equal(time.Unix(0, 0)) {
		t.Fatalf("prior %+v", pr)
	}
	dp := pr.Profile.(*global.DailyProfile)
	if dp.Hour != time.Hour || dp.DCs[0].UTCOffset != 9 || dp.DCs[0].Rates[8] != 15 || dp.DCs[1].Rates[8] != 0.09 || dp.DCs[2].Rates[23] != 2 || dp.DCs[2].Zone == nil || dp.DCs[2].Zone.String() != "Europe/London" {
		t.Fatalf("profile %+v", dp)
	}
	if _, err := ParseConfig([]byte(with(strings.Replace(profile, "callDuration: 90s", "callDuration: 90s\n    hour: 1h", 1)))); err != nil {
		t.Fatalf("hour 1h: %v", err)
	}
	if pr.StageFloor != 0 || pr.StageFloorMode != "" || pr.StageFloorWindow != 0 {
		t.Fatalf("stage floor keys absent: prior %v %q %v, want the defaults (0, \"\", 0)", pr.StageFloor, pr.StageFloorMode, pr.StageFloorWindow)
	}
	// policy.declaredProfile.stageFloor 1 turns the stage floor off; mode
	// and window reach the prior too.
	c, err = ParseConfig([]byte(with(strings.Replace(profile, "callDuration: 90s", "callDuration: 90s\n    stageFloor: 1\n    stageFloorMode: launch\n    stageFloorWindow: 150s", 1))))
	if err != nil {
		t.Fatal(err)
	}
	if pr := c.Policy.profilePrior(); pr.StageFloor != 1 || pr.StageFloorMode != global.StageFloorLaunch || pr.StageFloorWindow != 150*time.Second {
		t.Fatalf("stage floor keys: prior %v %q %v, want 1 launch 150s", pr.StageFloor, pr.StageFloorMode, pr.StageFloorWindow)
	}
	if c, err := ParseConfig([]byte(base)); err != nil || c.Policy.profilePrior() != nil {
		t.Fatalf("no declaredProfile: %v %v", err, c.Policy.profilePrior())
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown dc":   {"dc: london,", "dc: paris,", `policy.declaredProfile.dcs[2].dc "paris"`},
		"short":        {"rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]}\n      - {dc: houston", "rates: [1]}\n      - {dc: houston", "policy.declaredProfile.dcs[2].rates: 1 values"},
		"offset":       {"utcOffset: -6", "utcOffset: -16", "policy.declaredProfile.dcs[3].utcOffset -16"},
		"no file":      {"file: " + csv + "}", "file: " + csv + ".missing}", "policy.declaredProfile.dcs[1].file"},
		"call":         {"callDuration: 90s", "callDuration: 0s", "policy.declaredProfile.callDuration"},
		"missing dc":   {"      - {dc: london, timeZone: Europe/London, rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]}\n", "", "policy.declaredProfile.dcs: 3 entries, need one per datacenter (4)"},
		"bad file":     {"peak: 15}", "peak: -1}", "policy.declaredProfile.dcs[0].peak"},
		"hour":         {"callDuration: 90s", "hour: 1d", "policy.declaredProfile.hour"},
		"compressed":   {"callDuration: 90s", "hour: 100s", `policy.declaredProfile.hour "100s": a daemon's profile hours are the wall clock's (1h`},
		"no offset":    {"utcOffset: 8, ", "", "policy.declaredProfile.dcs[1]: utcOffset or timeZone required"},
		"two offsets":  {"timeZone: Europe/London,", "timeZone: Europe/London, utcOffset: 0,", "policy.declaredProfile.dcs[2]: utcOffset and timeZone both given"},
		"bad zone":     {"Europe/London", "Europe/Londres", `policy.declaredProfile.dcs[2].timeZone "Europe/Londres"`},
		"long call":    {"callDuration: 90s", "callDuration: 2h", "policy.declaredProfile.callDuration"},
		"unknown key":  {"callDuration: 90s", "callDurations: 90s", "callDurations"},
		"stage floor":  {"callDuration: 90s", "callDuration: 90s\n    stageFloor: 0.5", "policy.declaredProfile.stageFloor 0.5: must be 0 (the default, 3), 1 (off) or in (1, 100]"},
		"floor mode":   {"callDuration: 90s", "callDuration: 90s\n    stageFloorMode: keep", `policy.declaredProfile.stageFloorMode "keep"`},
		"floor window": {"callDuration: 90s", "callDuration: 90s\n    stageFloorWindow: -1s", "policy.declaredProfile.stageFloorWindow -1s"},
	} {
		_, err := ParseConfig([]byte(with(strings.Replace(profile, tc.from, tc.to, 1))))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("0, 1\n0, 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseConfig([]byte(with(strings.Replace(profile, "file: "+csv+"}", "file: "+bad+"}", 1))))
	if err == nil || !strings.Contains(err.Error(), "policy.declaredProfile.dcs[1].file "+bad+": profile line 2: hour 0 given twice") {
		t.Errorf("bad file: %v", err)
	}
}

// A declared profile in an IANA time zone moves with its daylight saving
// time, in the daemon's rounds: every DC's day falls from local 10:00 to
// 11:00 and rises back by 12:00 (Europe/London). At 10:20 UTC on the
// Saturday before the clocks go forward (28 March 2027, 01:00 UTC) London
// is at 10:20 GMT, a fall the prior leaves alone; at the same UTC time on
// the Sunday it is 11:20 BST, a rise the rounds plan for. A profile at
// utcOffset 0 (no DST) on the Sunday still falls.
func TestDaemonDeclaredProfileFollowsDST(t *testing.T) {
	rates := make([]float64, global.HoursPerDay)
	for h := range rates {
		rates[h] = 10
	}
	rates[11] = 1
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	sat, sun := time.Date(2027, 3, 27, 10, 20, 0, 0, time.UTC), time.Date(2027, 3, 28, 10, 20, 0, 0, time.UTC)
	if h := sat.In(london).Hour(); h != 10 {
		t.Fatalf("Saturday 10:20 UTC is %d h in London, want 10 (GMT)", h)
	}
	if h := sun.In(london).Hour(); h != 11 {
		t.Fatalf("Sunday 10:20 UTC is %d h in London, want 11 (BST)", h)
	}
	count := func(start time.Time, zone bool) int {
		d, clk, _ := simDaemonAt(t, start, func(c *Config) {
			p := &global.ProfileConfig{CallDuration: "30s"}
			for _, dc := range c.dcNames() {
				e := global.DCProfileConfig{DC: dc, Rates: rates}
				if zone {
					e.TimeZone = "Europe/London"
				} else {
					e.UTCOffset = new(float64)
				}
				p.DCs = append(p.DCs, e)
			}
			c.Policy.DeclaredProfile = p
		})
		return profileForecasts(d, clk)
	}
	zoneSat, zoneSun, fixedSun := count(sat, true), count(sun, true), count(sun, false)
	t.Logf("forecasts planned by the profile: Europe/London Saturday %d, Sunday %d; utcOffset 0 Sunday %d", zoneSat, zoneSun, fixedSun)
	if zoneSun == 0 {
		t.Error("Sunday 11:20 BST, a rise: no forecast planned by the declared profile")
	}
	if zoneSat != 0 || fixedSun != 0 {
		t.Errorf("a fall (Saturday 10:20 GMT: %d; utcOffset 0 on Sunday: %d): want no forecast planned by the declared profile", zoneSat, fixedSun)
	}
}
