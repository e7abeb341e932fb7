package ovs

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// WaitVswitchd blocks until the ovs-vswitchd that runs now exits and
// returns nil (at once when none runs), or returns ctx's error when ctx ends
// first. Event-driven: ovs-vswitchd is detached (not our child, so no
// wait(2)); its exit is read from a pidfd (pidfd_open, Linux ≥ 5.3), which
// becomes readable the moment the process ends.
func (d *Daemon) WaitVswitchd(ctx context.Context) error {
	pid := d.VswitchdPID()
	if pid == 0 {
		return nil
	}
	pfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil // exited between the pid file and here
	}
	if err != nil {
		return fmt.Errorf("ovs-vswitchd pid %d: pidfd_open: %w", pid, err)
	}
	defer unix.Close(pfd)
	// the pid was ours when read; the pidfd pins that process, so if it is
	// still the one of the pid file now, the pidfd is ovs-vswitchd's
	if d.VswitchdPID() != pid {
		return nil
	}
	return waitReadable(ctx, pfd)
}

// waitReadable blocks until fd is readable (nil) or ctx ends (its error):
// poll(2) on fd and an eventfd that ctx's end writes to.
func waitReadable(ctx context.Context, fd int) error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(efd)
	woke := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woke)
		_, _ = unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	defer func() {
		if !stop() {
			<-woke // the write is done before efd closes
		}
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents != 0 {
			return nil
		}
		if fds[1].Revents != 0 {
			return ctx.Err()
		}
	}
}
