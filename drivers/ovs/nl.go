package ovs

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// In-process link set-up (rtnetlink and one ethtool ioctl) instead of `ip
// netns exec … ip/ethtool` processes: each of those forks, enters the
// namespace and remounts /sys, and a DP instance's build ran ten of them
// (ovs-vswitchd's kill replaces every instance at once, see
// docs/benchmarks.md "DP recovery after ovs-vswitchd's kill").

// inNetns runs fn on a locked OS thread inside network namespace ns and
// moves the thread back to its own namespace afterwards. Were that move to
// fail, the thread stays locked and is discarded with the goroutine (no
// other goroutine ever runs in ns). The thread must go back: the main
// thread is never discarded, and a process whose main thread sits in a
// namespace is that namespace's process (`ip netns pids`), which clean-ups
// kill.
//
// vishvananda/netlink's own namespace switch (NewHandleAt, the Namespace
// option of the subscriptions: its executeInNetns) ignores a failed move
// back and unlocks the thread, which then runs other goroutines inside ns;
// so every netlink socket of this package is opened through inNetns
// (handleIn, WatchLinkDeletions) and never through the library's.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: this thread's: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := setns(h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", ns, err)
			return
		}
		err = fn()
		if setns(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// setns moves the calling thread into a namespace (a variable: a test
// fails the move back).
var setns = netns.Set

// handleIn opens a netlink handle whose socket lives in namespace ns (a
// socket keeps the namespace it was made in), through inNetns.
func handleIn(ns string) (*netlink.Handle, error) {
	var nh *netlink.Handle
	err := inNetns(ns, func() error {
		var err error
		nh, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", ns, err)
	}
	return nh, nil
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqPtr is struct ifreq carrying a pointer (ifr_data).
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// txChecksumOff turns TX checksum offload off on link name of the calling
// thread's namespace (`ethtool -K name tx off`: ETHTOOL_STXCSUM 0).
func txChecksumOff(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: tx checksum off: %w", name, err)
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM}
	var req ifreqPtr
	copy(req.name[:unix.IFNAMSIZ-1], name)
	req.data = unsafe.Pointer(&v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("%s: tx checksum off: %w", name, errno)
	}
	return nil
}

// txOffAndUp turns TX checksum offload off on link name and sets it up, in
// namespace ns.
func txOffAndUp(ns, name string) error {
	return inNetns(ns, func() error {
		if err := txChecksumOff(name); err != nil {
			return err
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", ns, name, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("netns %s: %s up: %w", ns, name, err)
		}
		return nil
	})
}

// addVethPair creates a veth pair with end a in namespace nsA and end b
// (MAC mac when not empty) in namespace nsB, each end made directly in its
// namespace with its final name.
func addVethPair(nsA, a, nsB, b, mac string) error {
	ha, err := netns.GetFromName(nsA)
	if err != nil {
		return fmt.Errorf("netns %s: %w", nsA, err)
	}
	defer ha.Close()
	hb, err := netns.GetFromName(nsB)
	if err != nil {
		return fmt.Errorf("netns %s: %w", nsB, err)
	}
	defer hb.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, Namespace: netlink.NsFd(ha)}, PeerName: b, PeerNamespace: netlink.NsFd(hb)}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return fmt.Errorf("mac: %q: %v", mac, err)
		}
		v.PeerHardwareAddr = hw
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s (netns %s) / %s (netns %s): %w", a, nsA, b, nsB, err)
	}
	return nil
}

// delLink deletes link name of namespace ns; a link that is not there is
// no error.
func delLink(ns, name string) error {
	nh, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer nh.Close()
	l, err := nh.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", ns, name, err)
	}
	if err := nh.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("netns %s: delete %s: %w", ns, name, err)
	}
	return nil
}

// setLoUp sets lo of namespace ns up.
func setLoUp(ns string) error {
	return inNetns(ns, func() error {
		l, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("netns %s: lo: %w", ns, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("netns %s: lo up: %w", ns, err)
		}
		return nil
	})
}

// netnsExists reports whether the named network namespace exists.
func netnsExists(ns string) bool {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return false
	}
	h.Close()
	return true
}
