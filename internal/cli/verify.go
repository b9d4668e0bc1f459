package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/bundle"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/textsafe"
)

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check an air-gap bundle's integrity without a registry",
		Long: `verify reads every blob of a bundle (a directory or a .tar) and checks its
size and digest, and checks that every image the bundle holds is complete:
each blob its manifests reference is in the bundle or declared inherited
from an earlier bundle of its chain.

Exit codes: 0 the bundle is intact; 1 a problem was found (each is
printed); 2 usage error or not a bundle.`,
		Example: `  regmirror verify bundle-1.tar
  regmirror verify /media/transfer/bundle-2`,
		Args: positional("BUNDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := bundle.Open(args[0])
			if err != nil {
				return &UsageError{err}
			}
			defer b.Close()
			bar := progress.New(g.stderr, "verify")
			var total int64
			for _, bl := range b.Manifest.Blobs {
				total += bl.Size
			}
			bar.SetTotal(0, total)
			bar.Start(500 * time.Millisecond)
			res, err := bundle.Verify(cmd.Context(), b, bar.AddBytes)
			bar.Stop()
			if err != nil {
				return err
			}
			for _, p := range res.Problems {
				fmt.Fprintln(g.stderr, textsafe.EscapeLines(p.String()))
			}
			if len(res.Problems) > 0 {
				return fmt.Errorf("%s: %d problems found", args[0], len(res.Problems))
			}
			fmt.Fprintf(g.stdout, "%s: ok: %s, %d images held, %d images completed, %d blobs (%s) checked, %d blobs inherited\n",
				args[0], b.Manifest.Ref().Describe(), res.Images, len(b.Manifest.Images), res.Blobs, progress.Bytes(res.Bytes), len(b.Manifest.Inherits))
			return nil
		},
	}
}
