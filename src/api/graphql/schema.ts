/**
 * The GraphQL schema (SDL). Field names are the REST API's (task_id,
 * task_type, …), so one task reads the same over REST, SSE and GraphQL.
 * Counters of the deployment are Float: GraphQL's Int is 32-bit, and a busy
 * deployment passes 2^31 tasks or tokens.
 */
export const typeDefs = /* GraphQL */ `
  "The status names of GET /task/{id}."
  enum TaskStatus {
    PENDING
    STARTED
    RETRY
    SUCCESS
    FAILURE
  }

  "A task as GET /task/{id} shows it."
  type Task {
    task_id: ID!
    status: TaskStatus!
    "Present once the task has succeeded."
    result: TaskResult
    "Present when the task failed, or its last attempt did and it will be retried (RETRY)."
    error: TaskError
  }

  type TaskResult {
    response: String!
    task_type: String!
    model: String!
    "Seconds the worker spent on the task."
    processing_time: Float!
    from_cache: Boolean!
    "Cosine similarity of a semantic cache hit."
    similarity: Float
    "How a cached answer was found: exact, semantic or single_flight."
    cache_tier: String
    "The cache entry served or stored, for DELETE /cache/{id}."
    cache_id: String
    metadata: TokenUsage!
  }

  type TokenUsage {
    tokens_used: Float!
    prompt_tokens: Float!
    completion_tokens: Float!
    "The provider that answered: openai, anthropic, cohere, simulated."
    provider: String
    "True: the route's first model failed and a model of its fallback chain answered."
    fallback: Boolean
    "What this task's LLM call cost at the price table, USD; 0 for a cache hit."
    cost_usd: Float
    "Of prompt_tokens, those the provider read from its prompt cache."
    cached_prompt_tokens: Float
    "The task type's prompt version the answer was made with (0: the deployment's own prompt)."
    prompt_version: Int
    "The prompt experiment, and its variant, the task was assigned to."
    experiment: ExperimentAssignment
  }

  type ExperimentAssignment {
    id: String!
    variant: String!
  }

  type TaskError {
    code: String!
    message: String!
    retriable: Boolean!
  }

  """
  One page of your tasks (the API key's tenant), newest first. It lists, first,
  your unfinished tasks (PENDING, STARTED, RETRY) when they are tracked, which is
  only with API keys and API_MAX_PENDING_TASKS on; then your finished tasks
  (SUCCESS, FAILURE) from your completion log, which keeps the last
  EVENTS_STREAM_MAXLEN completions, while their results exist (RESULT_TTL_SECONDS):
  every listed task can be read with task(id). Each page is read at its own
  instant: a task that ends between two pages may be listed twice or not at all.
  """
  type TaskConnection {
    edges: [TaskEdge!]!
    pageInfo: PageInfo!
  }

  type TaskEdge {
    "Pass as tasks(after:) to continue after this task."
    cursor: String!
    node: Task!
    task_type: String
    queue: String
    "Epoch ms the task was accepted (unfinished tasks)."
    accepted_at: Float
    "Epoch ms the task ended (finished tasks)."
    finished_at: Float
  }

  type PageInfo {
    "More tasks may follow (a page can be short when a status filter matched few of the tasks examined)."
    hasNextPage: Boolean!
    endCursor: String
  }

  "The main figures of GET /metrics, for every process of the deployment."
  type Metrics {
    "Tasks accepted, from the API and Kafka."
    total_tasks: Float!
    active_tasks: Float!
    "Attempts started, retries included."
    started_tasks: Float!
    completed_tasks: Float!
    failed_tasks: Float!
    retried_tasks: Float!
    "failed / (completed + failed); 0 when none ended."
    failure_rate: Float!
    "Tasks ended per second over the last 10 s."
    tasks_per_second: Float!
    cache_hit_rate: Float!
    "Seconds a worker spends on a task, mean."
    avg_processing_time: Float!
    "Seconds since the answering process started."
    uptime: Float!
    "Accepted to result, ms."
    latency_ms: Latency!
    "Worker time per task, ms."
    processing_ms: Quantiles!
    queues: [QueueDepth!]!
    cache: CacheFigures!
    llm: LlmFigures!
    kafka: KafkaFigures!
  }

  type Latency {
    p50: Float!
    p95: Float!
    p99: Float!
    max: Float!
    count: Float!
  }

  type Quantiles {
    p50: Float!
    p95: Float!
    p99: Float!
  }

  type QueueDepth {
    name: String!
    waiting: Float!
    active: Float!
    delayed: Float!
    failed: Float!
    accepted: Float!
  }

  type CacheFigures {
    hits: Float!
    misses: Float!
    hit_rate: Float!
    avg_similarity: Float!
    embedding_calls: Float!
    "Estimated LLM cost of the hits net of the embeddings, USD."
    estimated_cost_saved_usd: Float!
  }

  type LlmFigures {
    calls: Float!
    errors: Float!
    avg_ms: Float!
    p95_ms: Float!
    prompt_tokens: Float!
    completion_tokens: Float!
  }

  type KafkaFigures {
    events_consumed: Float!
    events_enqueued: Float!
    dead_lettered: Float!
    total_lag: Float!
  }

  "A live worker process, from heartbeats that expire (GET /workers)."
  type Worker {
    id: String!
    host: String!
    pid: Int!
    queues: [String!]!
    concurrency: Int!
    active_jobs: Int!
    processed: Float!
    failed: Float!
    rss_mb: Float!
    started_at: String!
    last_seen: String!
  }

  type Supervisor {
    recycled: Int!
    restarted: Int!
  }

  type Workers {
    count: Int!
    workers: [Worker!]!
    "Recycling counts of the answering node's worker processes, when it runs them."
    supervisor: Supervisor
  }

  type Query {
    "A task of yours, or null when there is none with this id (or it is another API key's)."
    task(id: ID!): Task
    "Your tasks, newest first: see TaskConnection for what is listed. first: 1..100."
    tasks(first: Int = 20, after: String, status: TaskStatus): TaskConnection!
    "The deployment's metrics. With API keys on, only for a key named in API_ADMINS (else FORBIDDEN)."
    metrics: Metrics!
    "The live worker processes. With API keys on, only for a key named in API_ADMINS (else FORBIDDEN)."
    workers: Workers!
  }

  "POST /process's body: the same limits and defaults."
  input ProcessInput {
    "1..10000 characters."
    text: String!
    "Default general_analysis; a task type of the prompts file."
    task_type: String
    "Default true."
    use_cache: Boolean
    "Default false: true skips the lookup and replaces the cached answer."
    refresh_cache: Boolean
    model: String
    "0..2, default 0.7."
    temperature: Float
    "1..4000, default 1000."
    max_tokens: Int
    "The end user: a prompt experiment gives all of one user's tasks the same variant."
    user_id: String
  }

  type Accepted {
    task_id: ID!
    status: TaskStatus!
    message: String!
    "True when an earlier request with the same idempotency key created this task."
    replayed: Boolean!
  }

  type Mutation {
    """
    Submits a text, as POST /process does: answered once the job is durably in Redis.
    idempotency_key (1..200 characters) is POST /process's Idempotency-Key: a retry
    gets the same task, never a second one, whichever of the two APIs it comes through.
    """
    process(input: ProcessInput!, idempotency_key: String): Accepted!
  }

  "One state change of a task."
  type TaskEvent {
    "Pass as taskUpdated(after:) to resume after this event."
    event_id: String!
    task_id: ID!
    status: TaskStatus!
    "Epoch ms of the change."
    at: Float
    attempt: Int
    result: TaskResult
    error: TaskError
    "The task's last event: its fields are then GET /task/{id}'s answer, and the subscription completes."
    final: Boolean!
  }

  type Subscription {
    """
    Every state change of one of your tasks, in order: PENDING, STARTED, RETRY (with
    its error), then SUCCESS or FAILURE, after which it completes. With after (an
    event_id), resumes after that event. TASK_NOT_FOUND for an unknown task.
    """
    taskUpdated(id: ID!, after: String): TaskEvent!
  }
`;
