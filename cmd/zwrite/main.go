package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/backend"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError marks a mistake on the command line: exit 2, and a hint to
// read the command's help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// backendAdvice is the flag to use when err says the asked-for backend
// cannot run here (internal/backend gives the reason only).
func backendAdvice(err error) string {
	var ue *backend.UnavailableError
	if errors.As(err, &ue) {
		return "; use --backend cpu (or auto)"
	}
	return ""
}

// interruptedError is a command's account of what it left behind after a
// signal stopped it (exit 130).
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }

// stdio is what a command reads and writes; tests hand in their own.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// newRootCmd builds a fresh command tree, so that tests can run several
// in parallel. ran is set once a command's RunE starts: an error before
// that came from cobra's parsing of flags and arguments, a usage error.
func newRootCmd(io stdio, ran *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "zwrite",
		Short: "Stream raw frames into compressed, sharded Zarr v3 stores",
		Long: `zwrite streams raw frames (files or stdin) into a compressed, sharded
Zarr v3 store that zarr-python, tensorstore and zarrita open unchanged, fast
enough to keep up with a camera. cat, verify and info read stores back.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A bare "zwrite" or an unknown command is a usage error.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for zwrite", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			*ran = true
			cmd.SetOut(io.err)
			_ = cmd.Help()
			return usagef("no command given")
		},
	}
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.CompletionOptions.DisableDefaultCmd = true

	// Each subcommand marks ran itself through this wrapper.
	var wrap runWrapper = func(run func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			*ran = true
			return run(cmd, args)
		}
	}
	root.AddCommand(
		newAppendCmd(io, wrap),
		newCatCmd(io, wrap),
		newVerifyCmd(io, wrap),
		newInfoCmd(io, wrap),
		newSynthCmd(io, wrap),
		newVersionCmd(io, wrap),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(io, wrap))
	}
	return root
}

// runWrapper marks a command as started; see newRootCmd.
type runWrapper func(func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error

// extraCommands lets commands that live in other files of this package
// register themselves from an init func without editing this file:
//
//	func init() { extraCommands = append(extraCommands, newBenchCmd) }
var extraCommands []func(stdio, runWrapper) *cobra.Command

// execute runs zwrite with args and returns the exit code; main and the
// in-process tests share it.
func execute(ctx context.Context, args []string, io stdio) int {
	ran := false
	root := newRootCmd(io, &ran)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	name := "zwrite"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	switch {
	case ctx.Err() != nil:
		// Cancelled by a signal: whatever error the command met while
		// shutting down, the signal is the reason the user sees.
		var ie *interruptedError
		if errors.As(err, &ie) {
			fmt.Fprintf(io.err, "%s: interrupted; %v\n", name, err)
		} else {
			fmt.Fprintf(io.err, "%s: interrupted: %v\n", name, err)
		}
		return exitInterrupted
	case isUsage(err) || !ran:
		fmt.Fprintf(io.err, "%s: %v%s\nRun '%s --help' for usage.\n", name, err, backendAdvice(err), name)
		return exitUsage
	default:
		fmt.Fprintf(io.err, "%s: %v\n", name, err)
		return exitFailure
	}
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		// First signal: cancel, so append aborts cleanly and leaves a
		// readable store. A second one means the user will not wait.
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, "zwrite: interrupted again; exiting now")
		os.Exit(exitInterrupted)
	}()
	code := execute(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	cancel()
	os.Exit(code)
}
