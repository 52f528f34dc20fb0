/**
 * `discovery: scale-set` wired into the controller: one Actions-service client and listener per such scale set,
 * and the three places where the controller's parts meet them.
 * - Routing: a job recorded from a message belongs to its listener's scale set (claimed before it is recorded);
 *   everything else is routed by labels as usual.
 * - Webhooks: a `workflow_job` webhook whose job routes to a scale-set scale set is ignored (answered, not recorded):
 *   that scale set knows its jobs from its message queue, under other ids, and must not count them twice.
 * - JIT configs: a runner of a scale-set scale set gets its config from the runner scale set's generatejitconfig.
 * Listeners run only while the controller acts (start to stop), so under leader election only the leader holds
 * message sessions; a new leader's sessions open once the previous leader's expire (409s until then, retried).
 */
import type { FleetConfig, ScaleSetConfig, Scope } from '../core/fleet-config.js';
import type { LabelRouter } from '../core/labels.js';
import type {
  GitHubPort,
  JitConfigRequest,
  JitConfigResult,
  WebhookSink,
  WorkflowJobEvent,
} from '../core/ports.js';
import type { FleetStore } from '../core/store-port.js';
import { ActionsServiceClient, ActionsServiceError } from '../github/actions-service.js';
import type { FetchLike, GitHubClient } from '../github/index.js';
import type { FleetMetrics, Logger } from '../telemetry/index.js';
import { ScaleSetListener } from './scale-set-listener.js';
import type { ScaleSetListenerStatus } from './scale-set-listener.js';

/** A webhook sink that may take batches (the store's group commit). */
export interface BatchableSink extends WebhookSink {
  acceptWorkflowJobs?(events: readonly WorkflowJobEvent[]): readonly { readonly duplicate: boolean }[];
}

export const isScaleSetMode = (set: ScaleSetConfig): boolean => set.discovery === 'scale-set';

/** Bounded memory of which message-born jobs belong where (jobs are routed once, when first recorded). */
const MAX_CLAIMS = 100_000;

export interface ScaleSetModeOptions {
  readonly config: FleetConfig;
  readonly github: GitHubClient;
  readonly fetch: FetchLike;
  readonly logger: Logger;
  readonly metrics: FleetMetrics;
  readonly now?: () => number;
  /** Listener retry pacing (tests shrink it). */
  readonly retryBaseMs?: number;
  readonly maxRetryMs?: number;
}

export class ScaleSetMode {
  readonly #claims = new Map<number, string>();
  readonly #listeners = new Map<string, ScaleSetListener>();
  readonly #clients = new Map<string, ActionsServiceClient>();
  readonly #modeSets: ReadonlySet<string>;
  #store: Pick<FleetStore, 'acceptWorkflowJob' | 'recordEvent'> | null = null;
  #wake: ((scaleSet: string) => void) | null = null;
  #started = false;

  constructor(options: ScaleSetModeOptions) {
    const sets = options.config.scaleSets.filter(isScaleSetMode);
    this.#modeSets = new Set(sets.map((s) => s.name));
    for (const set of sets) {
      const client = new ActionsServiceClient({
        webUrl: options.config.github.url,
        apiUrl: options.config.github.apiUrl,
        scope: set.scope,
        registrationToken: (signal) => options.github.registrationToken(set.scope, signal),
        fetch: options.fetch,
        ...(options.now ? { now: options.now } : {}),
        onCall: (route, status) => options.metrics.githubApiCalls.inc({ route, status }),
      });
      this.#listeners.set(
        set.name,
        new ScaleSetListener({
          set,
          client,
          store: {
            acceptWorkflowJob: (event) => this.#store!.acceptWorkflowJob(event),
            recordEvent: (event) => this.#store!.recordEvent(event),
          },
          claim: (jobId, scaleSet) => this.#claim(jobId, scaleSet),
          wake: (scaleSet) => this.#wake?.(scaleSet),
          logger: options.logger,
          ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
          ...(options.maxRetryMs !== undefined ? { maxRetryMs: options.maxRetryMs } : {}),
        }),
      );
      this.#clients.set(set.name, client);
    }
  }

  /** True when some scale set uses `discovery: scale-set`. */
  get active(): boolean {
    return this.#listeners.size > 0;
  }

  /** The store's routing: a claimed (message-born) job goes to its listener's scale set. */
  route(
    router: LabelRouter,
  ): (job: { id?: number; labels: readonly string[]; owner: string; repo: string }) => string | null {
    return (job) => (job.id !== undefined ? this.#claims.get(job.id) : undefined) ?? router.route(job);
  }

  #claim(jobId: number, scaleSet: string): void {
    if (this.#claims.size >= MAX_CLAIMS) this.#claims.clear();
    this.#claims.set(jobId, scaleSet);
  }

  /**
   * The webhook sink: webhooks of jobs that route to a scale-set scale set are answered but not recorded; the rest
   * go to the store (batches as batches).
   */
  webhookSink(store: FleetStore, router: LabelRouter): BatchableSink {
    const batch = (store as Partial<BatchableSink>).acceptWorkflowJobs?.bind(store);
    if (!this.active) {
      return {
        acceptWorkflowJob: (event) => store.acceptWorkflowJob(event),
        ...(batch ? { acceptWorkflowJobs: batch } : {}),
      };
    }
    const ours = (e: WorkflowJobEvent) => {
      const target = router.route(e.job);
      return target !== null && this.#modeSets.has(target);
    };
    return {
      acceptWorkflowJob: (event) => (ours(event) ? { duplicate: false } : store.acceptWorkflowJob(event)),
      ...(batch
        ? {
            acceptWorkflowJobs: (events: readonly WorkflowJobEvent[]) => {
              const kept = events.filter((e) => !ours(e));
              const results = kept.length > 0 ? batch(kept) : [];
              let i = 0;
              return events.map((e) => (ours(e) ? { duplicate: false } : results[i++]!));
            },
          }
        : {}),
    };
  }

  /** The GitHub port the reconciler uses: JIT configs of scale-set scale sets come from their runner scale set. */
  githubPort(port: GitHubPort): GitHubPort {
    if (!this.active) return port;
    const generate = async (
      scope: Scope,
      request: JitConfigRequest,
      signal?: AbortSignal,
    ): Promise<JitConfigResult> => {
      const listener = request.scaleSet !== undefined ? this.#listeners.get(request.scaleSet) : undefined;
      const client = request.scaleSet !== undefined ? this.#clients.get(request.scaleSet) : undefined;
      if (!listener || !client) return port.generateJitConfig(scope, request, signal);
      const id = await listener.ensureScaleSet(signal);
      try {
        return await client.generateJitConfig(id, request.name, request.workFolder, signal);
      } catch (error) {
        if (error instanceof ActionsServiceError && error.typeKey === 'AgentExistsException') {
          // As the REST path does after a retried call: the name is registered, and we hold no config for it.
          const existing = (await port.listRunners(scope, request.name, signal)).find(
            (r) => r.name === request.name,
          );
          if (existing) return { runner: existing, encodedJitConfig: '' };
        }
        throw error;
      }
    };
    return {
      generateJitConfig: generate,
      registrationToken: (scope, signal) => port.registrationToken(scope, signal),
      listRunners: (scope, prefix, signal) => port.listRunners(scope, prefix, signal),
      getRunner: (scope, id, signal) => port.getRunner(scope, id, signal),
      deleteRunner: (scope, id, signal) => port.deleteRunner(scope, id, signal),
      getJob: (owner, repo, id, signal) => port.getJob(owner, repo, id, signal),
      rerunJob: (owner, repo, id, signal) => port.rerunJob(owner, repo, id, signal),
      registrationUrl: (scope) => port.registrationUrl(scope),
    };
  }

  /** Jobs assigned per the statistics of a scale set's live session (undefined for webhook scale sets). */
  assignedJobs(scaleSet: string): number | undefined {
    return this.#listeners.get(scaleSet)?.assignedJobs();
  }

  /** Jobs assigned and not started per the statistics of a scale set's live session (undefined for webhook ones). */
  waitingJobs(scaleSet: string): number | undefined {
    return this.#listeners.get(scaleSet)?.waitingJobs();
  }

  status(): ScaleSetListenerStatus[] {
    return [...this.#listeners.values()].map((l) => l.status());
  }

  /** Starts the listeners (the controller acts from now on). */
  start(
    store: Pick<FleetStore, 'acceptWorkflowJob' | 'recordEvent'>,
    wake: (scaleSet: string) => void,
  ): void {
    if (this.#started) return;
    this.#started = true;
    this.#store = store;
    this.#wake = wake;
    for (const listener of this.#listeners.values()) listener.start();
  }

  /** Ends the long polls and deletes the sessions, within `ms`. */
  async stop(ms: number): Promise<void> {
    await Promise.all([...this.#listeners.values()].map((l) => l.stop(ms)));
  }
}
