// Placeholder until the serve lifecycle lands (issue 3): the CLI's `serve` dispatches here.
export interface ServeOptions {
  configPath: string;
  lambdaLoopbackOnly: boolean;
  servicesPath?: string;
}

export async function runServe(_opts: ServeOptions): Promise<number> {
  process.stderr.write("clef-proxy serve: not implemented\n");
  return 1;
}
