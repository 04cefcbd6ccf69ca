// The reference's usage text, byte for byte (docs/CONTRACT.md §1).
export const USAGE = `clef-proxy — forward credential proxy for @clef-sh/agent

Usage:
  clef-proxy serve --config <path>
  clef-proxy ca export [--format pem|der|der-base64] [--out <path>]
  clef-proxy ca path
  clef-proxy ca regenerate --confirm
  clef-proxy --version

The proxy is spawned and supervised by @clef-sh/agent. See PROXY_PRD.md.
`;
