/**
 * The `console` scenario's own view of the completions the page counts: GET /events?task_type=sentiment_analysis,
 * the stream the page's Live sentiment follows, opened before any load so both start from the same first
 * completion. Each completion's finished_at (the worker's clock, epoch ms), in the stream's order.
 */
export interface CompletionFollower {
  /** finished_at of the n-th completion at index n - 1. */
  finishes: number[];
  close(): void;
}

export async function followCompletions(appUrl: string): Promise<CompletionFollower> {
  const abort = new AbortController();
  const response = await fetch(`${appUrl}/events?task_type=sentiment_analysis`, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  if (response.status !== 200 || !response.body) throw new Error(`GET /events answered ${response.status}`);
  const finishes: number[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  void (async () => {
    for await (const chunk of response.body as ReadableStream<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let blank = buffer.indexOf("\n\n");
      while (blank >= 0) {
        const block = buffer.slice(0, blank);
        buffer = buffer.slice(blank + 2);
        blank = buffer.indexOf("\n\n");
        // Completions are the unnamed events; comments (": ping") and named ones (gap, error) are not counted.
        if (/^event: /m.test(block)) continue;
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data) continue;
        const { finished_at } = JSON.parse(data) as { finished_at?: number };
        finishes.push(finished_at ?? Date.now());
      }
    }
  })().catch(() => {});
  return { finishes, close: () => abort.abort() };
}
