export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled" | "skipped";
export type StepStatus = "pending" | "ready" | "running" | "completed" | "failed" | "skipped" | "cancelled" | "suspended";

export interface Page<T> {
  items: T[];
  total: number;
}

export interface Workspace {
  name: string;
  tasks_count: number;
  actions_count: number;
  triggers_count: number;
  revision: string;
  errors: string[];
}

/** One input of a task as the API describes it. Older servers send a list
 * of fields with `enum`; the workflow language's full shape (the Rust
 * Strøm's) is a map by name with options, secret, order and so on. The UI
 * normalises both with normaliseInputs (lib/inputs.ts). */
export interface RawInputField {
  name?: string;
  label?: string;
  type?: string;
  description?: string;
  default?: unknown;
  has_default?: boolean;
  required?: boolean;
  secret?: boolean;
  options?: unknown[];
  enum?: unknown[];
  allow_custom?: boolean;
  multiple?: boolean;
  order?: number;
}

export interface Task {
  id?: string;
  name: string;
  workspace?: string;
  folder?: string;
  description?: string;
  mode: string;
  has_triggers?: boolean;
  input: RawInputField[] | Record<string, RawInputField>;
}

export interface FlowStep {
  name?: string;
  action: string;
  depends_on?: string[];
  input?: Record<string, unknown>;
  continue_on_failure?: boolean;
  timeout?: string;
}

export interface TaskDetail extends Task {
  flow: FlowStep[] | Record<string, FlowStep>;
}

export interface Trigger {
  name: string;
  type: string;
  task: string;
  workspace?: string;
  cron?: string;
  enabled?: boolean;
  input?: Record<string, unknown>;
  next_fire_at?: string | null;
  next_runs?: string[];
  mode?: string;
  [k: string]: unknown;
}

export interface Attempt {
  attempt: number;
  worker_id?: string;
  status: string;
  exit_code?: number | null;
  error_message?: string;
  started_at?: string | null;
  completed_at?: string | null;
}

export interface Step {
  step_name: string;
  action_name: string;
  action_type: string;
  depends_on?: string[];
  status: StepStatus;
  input?: Record<string, unknown> | null;
  /** Any JSON value a step's last `OUTPUT:` line held (an object most
   * often; a list, a string, a number too, as upstream). */
  output?: unknown;
  worker_id?: string | null;
  started_at?: string | null;
  completed_at?: string | null;
  error_message?: string;
  attempt?: number;
  max_attempts?: number;
  attempts?: Attempt[];
  /** Loops (for_each): an instance is named `step[i]`; servers may also
   * say so in these fields. The placeholder step (named `step`) carries
   * the loop's overall status and, when done, the array of outputs. */
  loop?: string | null;
  loop_source?: string | null;
  instances?: string[];
  skip_reason?: string;
  loop_index?: number | null;
  loop_total?: number | null;
  loop_item?: unknown;
  /** Sub-jobs (`type: task`): the child job this step started. */
  child_job_id?: string | null;
  /** Approval gates (`type: approval`): the rendered message, and the
   * decision once made. */
  approval_message?: string | null;
  message?: string | null;
  approved_by?: string | null;
  decided_by?: string | null;
  rejection_reason?: string | null;
}

export interface Job {
  job_id: string;
  workspace: string;
  task_name: string;
  mode?: string;
  input?: Record<string, unknown> | null;
  output?: Record<string, unknown> | null;
  status: JobStatus;
  source_type: string;
  source_id?: string | null;
  revision?: string;
  created_at: string;
  started_at?: string | null;
  completed_at?: string | null;
  steps?: Step[];
  /** A child job (`type: task` step) names its parent job and step. */
  parent_job_id?: string | null;
  parent_step_name?: string | null;
  /** Child jobs of `type: task` steps and hook jobs, as the API links them. */
  children?: JobLink[];
  hooks?: JobLink[];
  created_by?: string;
  cancelled_by?: string;
}

export interface JobLink {
  job_id: string;
  step_name?: string;
  event?: string;
  task_name: string;
  status: string;
}

export interface Worker {
  worker_id: string;
  name: string;
  capabilities: string[];
  tags: string[];
  /** Reserved: it takes only steps that require every one of its tags. */
  exclusive?: boolean;
  status: string;
  registered_at: string;
  last_heartbeat_at?: string | null;
  /** Steps it runs at once (its slots), as it said when registering;
   * absent for a worker that did not say. */
  max_concurrent?: number;
  [k: string]: unknown;
}

export interface LogLine {
  seq: number;
  step: string;
  attempt: number;
  ts: string;
  stream: "stdout" | "stderr";
  text: string;
}

export interface DurationStats {
  sample_size: number;
  avg_ms: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
}

export interface TaskStats {
  window: number;
  task: DurationStats & { recent: { job_id: string; duration_ms: number; completed_at: string }[] };
  steps: (DurationStats & { step_name: string })[];
}

export interface ServerConfig {
  auth_required: boolean;
  has_internal_auth: boolean;
  oidc_providers: { id: string; display_name: string }[];
  version?: string;
}

export interface Me {
  user_id: string;
  name?: string | null;
  email: string;
  is_admin?: boolean;
  groups?: string[];
  created_at?: string;
  last_login_at?: string | null;
  auth_methods?: string[];
}

/** A user as the admin API shows it (same shape as /api/auth/me). */
export type User = Me;

export interface UserPage {
  items: User[];
  total: number;
  limit: number;
  offset: number;
}

export interface ApiKey {
  prefix: string;
  name: string;
  created_at: string;
  expires_at?: string | null;
  last_used_at?: string | null;
}

export interface ApiKeyCreated extends ApiKey {
  key: string;
}
