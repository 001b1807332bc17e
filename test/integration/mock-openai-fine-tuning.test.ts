/**
 * The mock OpenAI server's files and fine-tuning endpoints through the real
 * `openai` SDK (files.create, fineTuning.jobs.create/retrieve/list/
 * listEvents/cancel): the shapes the SDK types, OpenAI's checks of a
 * training file, a job's life, a fault that fails it, and the chat answering
 * the fine-tuned model's name.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import OpenAI, { toFile } from "openai";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { waitFor } from "../helpers/services";

let mock: MockOpenAiServer;
let client: OpenAI;

beforeAll(() => {
  mock = createMockOpenAiServer({ fineTuning: { validatingMs: 30, queuedMs: 30, runningMs: 100 } });
  client = new OpenAI({ apiKey: "sk-test", baseURL: mock.url, maxRetries: 0 });
});
afterEach(() => mock.reset());
afterAll(() => mock.stop());

const example = (n: number) =>
  JSON.stringify({
    messages: [
      { role: "system", content: "You classify." },
      { role: "user", content: `text ${n}` },
      { role: "assistant", content: `answer ${n}` },
    ],
  });
const jsonl = (count: number) => Array.from({ length: count }, (_, n) => example(n)).join("\n");
async function uploaded(content: string, name = "train.jsonl") {
  return client.files.create({ file: await toFile(Buffer.from(content), name), purpose: "fine-tune" });
}

async function finished(id: string) {
  return waitFor(async () => {
    const job = await client.fineTuning.jobs.retrieve(id);
    return ["succeeded", "failed", "cancelled"].includes(job.status) ? job : undefined;
  }, `job ${id} to end`);
}

describe("files", () => {
  test("an upload is a FileObject, and its content reads back as sent", async () => {
    const content = jsonl(10);
    const file = await uploaded(content);
    expect(file).toMatchObject({ object: "file", purpose: "fine-tune", filename: "train.jsonl", status: "processed" });
    expect(file.id).toMatch(/^file-/);
    expect(file.bytes).toBe(Buffer.byteLength(content));
    expect(await client.files.retrieve(file.id)).toMatchObject({ id: file.id, bytes: file.bytes });
    expect(await (await client.files.content(file.id)).text()).toBe(content);
    expect(mock.fineTuning.files().map((f) => f.content)).toEqual([content]);
  });

  test("a fine-tune file must be .jsonl, and an unknown file is 404", async () => {
    const refused = await uploaded(jsonl(10), "train.csv").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    const missing = await client.files.retrieve("file-nope").catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("fine-tuning jobs", () => {
  test("a job moves validating_files → queued → running → succeeded and names its model", async () => {
    // Each state long enough for a 25 ms poll to see it on a busy machine.
    mock.fineTuning.setTimings({ validatingMs: 150, queuedMs: 150, runningMs: 150 });
    const training = await uploaded(jsonl(12));
    const validation = await uploaded(jsonl(2), "valid.jsonl");
    const job = await client.fineTuning.jobs.create({
      model: "gpt-4o-mini",
      training_file: training.id,
      validation_file: validation.id,
      suffix: "support",
      metadata: { aies_fine_tune: "ft_1" },
    });
    expect(job).toMatchObject({
      object: "fine_tuning.job",
      status: "validating_files",
      model: "gpt-4o-mini",
      fine_tuned_model: null,
      training_file: training.id,
      validation_file: validation.id,
      error: null,
    });
    const seen = new Set<string>([job.status]);
    const done = await waitFor(async () => {
      const now = await client.fineTuning.jobs.retrieve(job.id);
      seen.add(now.status);
      return now.status === "succeeded" ? now : undefined;
    }, "the job to succeed");
    expect([...seen]).toEqual(["validating_files", "queued", "running", "succeeded"]);
    expect(done.fine_tuned_model).toBe(`ft:gpt-4o-mini:aies:support:${job.id.slice(-8)}`);
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(done.finished_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.result_files).toHaveLength(1);

    const events = [];
    for await (const event of client.fineTuning.jobs.listEvents(job.id, { limit: 2 })) events.push(event);
    expect(events[0]?.message).toBe("The job has successfully completed");
    expect(events.at(-1)?.message).toBe(`Created fine-tuning job: ${job.id}`);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);

    const listed = await client.fineTuning.jobs.list({ metadata: { aies_fine_tune: "ft_1" } });
    expect(listed.data.map((j) => j.id)).toEqual([job.id]);
    expect((await client.fineTuning.jobs.list({ metadata: { aies_fine_tune: "ft_2" } })).data).toEqual([]);

    const answer = await client.chat.completions.create({
      model: done.fine_tuned_model as string,
      messages: [{ role: "user", content: "hello" }],
    });
    expect(answer.model).toBe(done.fine_tuned_model as string);
    expect(answer.choices[0]?.message.content).toContain("mock answer");
  });

  test("a training file OpenAI would refuse fails the job with invalid_training_file", async () => {
    const few = await uploaded(jsonl(9));
    const noAssistant = await uploaded(
      Array.from({ length: 10 }, () => JSON.stringify({ messages: [{ role: "user", content: "hi" }] })).join("\n"),
    );
    const broken = await uploaded(`${jsonl(10)}\n{not json`);
    const cases = [
      [few, "Training file has 9 example(s), but must have at least 10 examples"],
      [noAssistant, 'Line 1: examples must have at least one message with the role "assistant"'],
      [broken, "Line 11 is not valid JSON"],
    ] as const;
    for (const [file, reason] of cases) {
      const job = await client.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: file.id });
      const done = await finished(job.id);
      expect(done.status).toBe("failed");
      expect(done.error?.code).toBe("invalid_training_file");
      expect(done.error?.param).toBe("training_file");
      expect(done.error?.message).toContain(reason);
      expect(done.fine_tuned_model).toBeNull();
    }
  });

  test("a job_failed fault fails the job it targets while it runs, with the fault's reason", async () => {
    const training = await uploaded(jsonl(10));
    mock.setFault({ kind: "job_failed", endpoint: "fine_tuning", textIncludes: "doomed", message: "GPU on fire" });
    const spared = await client.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: training.id });
    const doomed = await client.fineTuning.jobs.create({
      model: "gpt-4o-mini",
      training_file: training.id,
      suffix: "doomed",
    });
    expect((await finished(spared.id)).status).toBe("succeeded");
    const failed = await finished(doomed.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toEqual({ code: "server_error", message: "GPU on fire", param: null });
  });

  test("a 500 fault on job creation is the SDK's InternalServerError; a bad file id is a 400", async () => {
    const training = await uploaded(jsonl(10));
    mock.setFault({ kind: "500", endpoint: "fine_tuning", times: 1 });
    const failed = await client.fineTuning.jobs
      .create({ model: "gpt-4o-mini", training_file: training.id })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(OpenAI.InternalServerError);
    const bad = await client.fineTuning.jobs
      .create({ model: "gpt-4o-mini", training_file: "file-nope" })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("training_file");
  });

  test("a running job can be cancelled once; a finished one cannot", async () => {
    mock.fineTuning.setTimings({ runningMs: 60_000 });
    const training = await uploaded(jsonl(10));
    const job = await client.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: training.id });
    const cancelled = await client.fineTuning.jobs.cancel(job.id);
    expect(cancelled.status).toBe("cancelled");
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe("cancelled");
    const again = await client.fineTuning.jobs.cancel(job.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpenAI.BadRequestError);
    const missing = await client.fineTuning.jobs.retrieve("ftjob-nope").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("POST /__mock/fine-tuning sets the timings another process drives", async () => {
    const base = mock.url.replace(/\/v1$/, "");
    const set = await fetch(`${base}/__mock/fine-tuning`, {
      method: "POST",
      body: JSON.stringify({ running_ms: 5 }),
    });
    expect(((await set.json()) as { timings: { runningMs: number } }).timings.runningMs).toBe(5);
    const bad = await fetch(`${base}/__mock/fine-tuning`, { method: "POST", body: JSON.stringify({ queued_ms: -1 }) });
    expect(bad.status).toBe(400);
  });
});
