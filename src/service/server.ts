/**
 * The HTTP API (fastify): validates and stores uploads, hands jobs to a backend, reports their
 * state and serves their outputs. The OpenAPI document is generated from the same route schemas
 * that fastify validates requests with.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fastifyMultipart, { type MultipartFile } from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { parseColour } from '../composite/index.js';
import { CleanplateError } from '../errors.js';
import type { Backend } from './backend.js';
import { FILE_FIELDS, OPTION_FIELDS, OUTPUT_TYPES, type FileField, type JobOptions, type JobRecord, type StoredInput } from './jobs.js';
import { HttpError, probeUpload, type Limits } from './probe.js';
import { JOB_ID, newJobId, type JobStore } from './store.js';

export interface ServerOptions {
  store: JobStore;
  backend: Backend;
  limits: Limits;
  /** Accepted bearer tokens; none = no authentication (loopback only, checked by `serve`). */
  tokens?: string[];
  version?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    jobId?: string;
    accepted?: boolean;
    owner: string;
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

const ERROR = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
const PROGRESS = {
  type: 'object',
  properties: {
    framesDone: { type: 'integer' }, framesTotal: { type: 'integer' },
    fps: { type: 'number' }, etaSeconds: { type: ['number', 'null'] },
  },
} as const;
const JOB = {
  type: 'object',
  properties: {
    id: { type: 'string' }, kind: { type: 'string', enum: ['image', 'video'] },
    state: { type: 'string', enum: ['queued', 'active', 'completed', 'failed'] },
    progress: PROGRESS, error: { type: ['string', 'null'] }, attempts: { type: 'integer' },
    outputs: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' }, updatedAt: { type: 'string' },
  },
  required: ['id', 'kind', 'state', 'progress', 'error', 'outputs'],
} as const;
const ID_PARAMS = { type: 'object', properties: { id: { type: 'string', pattern: JOB_ID.source } }, required: ['id'] } as const;
const AUTH_HEADER = { type: 'object', properties: { authorization: { type: 'string', description: 'Bearer TOKEN (when the server has --token-file)' } } } as const;
const UPLOAD = { type: 'object', properties: { file: { type: 'string' } }, required: ['file'], description: 'a file part' } as const;

/** The multipart body as fastify validates it (file parts are stored first and become {file}). */
const JOB_BODY = {
  type: 'object',
  required: ['input'],
  additionalProperties: false,
  properties: { input: UPLOAD, plate: UPLOAD, background: UPLOAD, ...OPTION_FIELDS },
} as const;

/** The same body as a client sends it, for the OpenAPI document. */
const JOB_BODY_DOC = {
  type: 'object',
  required: ['input'],
  properties: {
    input: { type: 'string', format: 'binary', description: 'the image (PNG, JPEG, WebP) or video to matte' },
    plate: { type: 'string', format: 'binary', description: 'the clean plate: a photo of the background without the subject' },
    background: { type: 'string', format: 'binary', description: 'a new background: image, or (for a video input) a video' },
    ...OPTION_FIELDS,
  },
};

function jobView(r: JobRecord, s: { state: string; progress: unknown; error: string | null; attempts: number }, outputs: string[]) {
  return { id: r.id, kind: r.kind, state: s.state, progress: s.progress, error: s.error, attempts: s.attempts, outputs, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

/** One `bytes=` range of a file of `size` bytes; undefined for none, null when it cannot be satisfied. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (!m[1] && !m[2])) return undefined; // several ranges or another unit: send the whole file (RFC 9110 allows it)
  let start: number, end: number;
  if (!m[1]) { start = Math.max(0, size - Number(m[2])); end = size - 1; }
  else { start = Number(m[1]); end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1; }
  if (start >= size || start > end || !Number.isSafeInteger(start)) return null;
  return { start, end };
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const { store, backend, limits } = o;
  const tokens = (o.tokens ?? []).map(sha256);
  const app = Fastify({
    logger: false,
    // Job ids and output names are checked by schema; nothing else of the URL reaches the store.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => {
      const e = errors[0]!;
      const where = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
      const p = e.params as { additionalProperty?: string; allowedValues?: string[]; missingProperty?: string };
      const detail = p.additionalProperty ? ` '${p.additionalProperty}'` : p.allowedValues ? ` (${p.allowedValues.join(', ')})` : '';
      return new Error(`${where} ${e.message}${detail}`);
    },
  });
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (r) => { if (!(r.config as { hide?: boolean } | undefined)?.hide) routes.push(r); });
  app.decorateRequest('jobId', undefined);
  app.decorateRequest('accepted', false);
  app.decorateRequest('owner', 'anonymous');

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    let status = err instanceof HttpError ? err.statusCode : err.statusCode ?? 500;
    if (err instanceof CleanplateError) status = 422;
    if (status >= 500) request.log.error(err);
    const message = status >= 500 ? 'internal error' : err.message;
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((_request, reply) => { void reply.code(404).send({ error: 'not found' }); });

  // Authentication: every route except /healthz and /openapi.json when tokens are configured.
  app.addHook('onRequest', async (request, reply) => {
    const open = request.url === '/healthz' || request.url === '/openapi.json';
    if (!tokens.length || open) return;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const given = m ? sha256(m[1]!) : undefined;
    if (!given || !tokens.some((t) => timingSafeEqual(t, given))) {
      void reply.code(401).header('www-authenticate', 'Bearer').send({ error: m ? 'invalid token' : 'missing bearer token (Authorization: Bearer TOKEN)' });
      return reply;
    }
    request.owner = given.toString('hex').slice(0, 16);
  });

  // An upload that did not become a job (refused, failed, client gone) is removed: before the answer
  // goes out (onSend), so that a client told 4xx never finds a trace of it; onResponse and
  // onRequestAbort catch what never reached onSend.
  const discard = async (request: FastifyRequest) => {
    if (request.jobId && !request.accepted) {
      await store.removeJob(request.jobId).catch(() => undefined);
      request.jobId = undefined;
    }
  };
  app.addHook('onSend', async (request, _reply, payload) => { await discard(request); return payload; });
  app.addHook('onResponse', discard);
  app.addHook('onRequestAbort', discard);

  await app.register(fastifyMultipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: limits.maxUploadBytes, files: 3, fields: 12, parts: 16, fieldSize: 1024, fieldNameSize: 64 },
    async onFile(this: FastifyRequest, part: MultipartFile) {
      if (!(FILE_FIELDS as readonly string[]).includes(part.fieldname)) {
        part.file.resume();
        throw new HttpError(400, `unexpected file field '${part.fieldname}' (input, plate or background)`);
      }
      this.jobId ??= newJobId();
      const name = `${part.fieldname}.upload`;
      let bytes: number;
      try {
        bytes = await store.saveInput(this.jobId, name, part.file);
      } catch (err) {
        part.file.resume();
        if ((err as { code?: string }).code === 'EEXIST') throw new HttpError(400, `${part.fieldname}: given more than once`);
        if ((err as { statusCode?: number }).statusCode === 413) throw new HttpError(413, `${part.fieldname}: upload over the limit of ${limits.maxUploadBytes} bytes`);
        throw err;
      }
      if (part.file.truncated) throw new HttpError(413, `${part.fieldname}: upload over the limit of ${limits.maxUploadBytes} bytes`);
      if (!bytes) throw new HttpError(422, `${part.fieldname}: empty file`);
      (part as unknown as { value: unknown }).value = { file: name, bytes };
    },
  });

  app.get('/healthz', {
    schema: { summary: 'Liveness', response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, mode: { type: 'string' }, version: { type: 'string' } } } } },
  }, async () => ({ ok: true, mode: backend.name, version: o.version ?? '0' }));

  app.get('/openapi.json', { config: { hide: true } }, async () => openapi(routes, o.version ?? '0'));

  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics: jobs by state, queue depth, frames per second', headers: AUTH_HEADER },
  }, async (_request, reply) => {
    const m = await backend.metrics();
    const lines = [
      '# HELP cleanplate_jobs Jobs known to this deployment, by state.',
      '# TYPE cleanplate_jobs gauge',
      ...Object.entries(m.jobs).map(([state, n]) => `cleanplate_jobs{state="${state}"} ${n}`),
      '# HELP cleanplate_queue_depth Jobs waiting for a worker.',
      '# TYPE cleanplate_queue_depth gauge',
      `cleanplate_queue_depth ${m.queueDepth}`,
      '# HELP cleanplate_frames_per_second Video frames matted per second, summed over running jobs.',
      '# TYPE cleanplate_frames_per_second gauge',
      `cleanplate_frames_per_second ${m.framesPerSecond}`,
    ];
    void reply.type('text/plain; version=0.0.4; charset=utf-8');
    return lines.join('\n') + '\n';
  });

  app.post('/v1/jobs', {
    schema: {
      summary: 'Submit a job (multipart/form-data)',
      headers: { type: 'object', properties: { ...AUTH_HEADER.properties, 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$', description: 're-posting with the same key returns the first job' } } },
      body: JOB_BODY,
      response: { 202: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, '4xx': ERROR },
    },
    config: { openapiBody: JOB_BODY_DOC },
  }, async (request, reply) => {
    const body = request.body as Record<string, unknown> & Partial<Record<FileField, { file: string; bytes: number }>>;
    const id = request.jobId;
    if (!id || !body.input) throw new HttpError(400, 'input: a file is required (multipart field "input")');
    if (body.background && body.color !== undefined) throw new HttpError(400, 'give either a background or a color, not both');
    if (body.color !== undefined) { try { parseColour(String(body.color)); } catch (e) { throw new HttpError(400, `color: ${(e as Error).message}`); } }
    if (!body.plate && body.prior === 'none') throw new HttpError(400, 'nothing to matte from: give a plate, or a prior (rvm or selfie)');
    if ((await backend.openJobs(request.owner)) >= limits.maxOpenJobsPerOwner) {
      throw new HttpError(429, `too many jobs queued or running for this token (limit ${limits.maxOpenJobsPerOwner})`);
    }

    // Probe every upload; the input decides the job's kind.
    const inputs: JobRecord['inputs'] = {} as JobRecord['inputs'];
    let kind: 'image' | 'video' = 'image';
    for (const field of FILE_FIELDS) {
      const part = body[field];
      if (!part) continue;
      const path = await store.localInput(id, part.file);
      const probed = await probeUpload(path, field, limits, field !== 'plate' && (field === 'input' || kind === 'video'));
      if (field === 'input') kind = probed.kind;
      // The stored name tells matteVideo a background video from an image.
      const file = `${field}.${probed.kind === 'video' ? 'mkv' : 'img'}`;
      await store.renameInput(id, part.file, file);
      inputs[field] = { file, bytes: part.bytes, ...probed } satisfies StoredInput;
    }
    const options: JobOptions = {
      prior: (body.prior as JobOptions['prior']) ?? 'rvm',
      engine: (body.engine as JobOptions['engine']) ?? 'classic',
      align: (body.align as JobOptions['align']) ?? 'auto',
      maxPixels: limits.maxPixels,
      ...(body.color !== undefined ? { color: String(body.color) } : {}),
      ...(kind === 'video' ? {
        temporal: body.temporal !== false,
        ...(body['motion-stride'] !== undefined ? { motionStride: Number(body['motion-stride']) } : {}),
        ...(body['alpha-sequence'] === true ? { alphaSequence: true } : {}),
      } : {}),
    };
    const t = new Date().toISOString();
    const key = request.headers['idempotency-key'];
    const keyHash = typeof key === 'string' ? createHash('sha256').update(`${request.owner}\n${key}`).digest('hex') : undefined;
    const record: JobRecord = {
      id, kind, owner: request.owner, state: 'queued', options, inputs,
      progress: { framesDone: 0, framesTotal: kind === 'image' ? 1 : inputs.input.frames ?? 0, fps: 0, etaSeconds: null },
      error: null, outputs: [], attempts: 0, createdAt: t, updatedAt: t, ...(keyHash ? { keyHash } : {}),
    };
    // The record is written before the key is claimed, so a key always points at a job that exists.
    await store.writeRecord(record);
    if (keyHash) {
      let bound = await store.claimKey(keyHash, id);
      if (bound !== id && !(await store.readRecord(bound))) {
        // The job the key was bound to is gone (deleted by a process that died before releasing the key).
        await store.releaseKey(keyHash);
        bound = await store.claimKey(keyHash, id);
      }
      if (bound !== id) {
        void reply.code(202).header('idempotent-replayed', 'true').header('location', `/v1/jobs/${bound}`);
        return { id: bound }; // this upload is discarded (onResponse)
      }
    }
    request.accepted = true;
    await backend.enqueue(record);
    void reply.code(202).header('location', `/v1/jobs/${id}`);
    return { id };
  });

  const findJob = async (request: FastifyRequest): Promise<JobRecord> => {
    const { id } = request.params as { id: string };
    const r = await store.readRecord(id);
    // Another token's job is not found, as if it did not exist.
    if (!r || r.owner !== request.owner) throw new HttpError(404, 'job not found');
    return r;
  };

  app.get('/v1/jobs/:id', {
    schema: { summary: 'A job: state, progress (frames done/total, fps, ETA), error, outputs', params: ID_PARAMS, headers: AUTH_HEADER, response: { 200: JOB, '4xx': ERROR } },
  }, async (request) => {
    const r = await findJob(request);
    const s = await backend.status(r);
    return jobView(r, s, s.state === 'completed' ? await store.listOutputs(r.id) : []);
  });

  app.get('/v1/jobs/:id/outputs/:name', {
    schema: {
      summary: 'An output file (the CLI\'s names); Range requests are honoured',
      params: { type: 'object', properties: { id: ID_PARAMS.properties.id, name: { type: 'string', enum: Object.keys(OUTPUT_TYPES) } }, required: ['id', 'name'] },
      headers: { type: 'object', properties: { ...AUTH_HEADER.properties, range: { type: 'string' } } },
    },
  }, async (request, reply) => serveOutput(request, reply, await findJob(request), (request.params as { name: string }).name));

  app.get('/v1/jobs/:id/outputs/alpha/:frame', {
    schema: {
      summary: 'One PNG of a video job\'s alpha sequence (option alpha-sequence): alpha/000001.png for the first frame',
      params: { type: 'object', properties: { id: ID_PARAMS.properties.id, frame: { type: 'string', pattern: '^[0-9]{6}\\.png$' } }, required: ['id', 'frame'] },
      headers: AUTH_HEADER,
    },
  }, async (request, reply) => serveOutput(request, reply, await findJob(request), `alpha/${(request.params as { frame: string }).frame}`));

  const serveOutput = async (request: FastifyRequest, reply: FastifyReply, r: JobRecord, name: string) => {
    const file = await store.openOutput(r.id, name);
    if (!file) throw new HttpError(404, `${name}: no such output (yet)`);
    void reply.header('accept-ranges', 'bytes').type(OUTPUT_TYPES[name] ?? 'image/png');
    const range = parseRange(request.headers.range, file.size);
    if (range === null) {
      return reply.code(416).type('application/json').header('content-range', `bytes */${file.size}`).send({ error: `range not satisfiable (size ${file.size})` });
    }
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${file.size}`).header('content-length', range.end - range.start + 1);
      return reply.send(file.stream(range.start, range.end));
    }
    void reply.header('content-length', file.size);
    return reply.send(file.size ? file.stream(0, file.size - 1) : '');
  };

  app.delete('/v1/jobs/:id', {
    schema: { summary: 'Cancel a job and remove it with its inputs and outputs', params: ID_PARAMS, headers: AUTH_HEADER, response: { '4xx': ERROR } },
  }, async (request, reply) => {
    const r = await findJob(request);
    await backend.cancel(r.id);
    await store.removeJob(r.id);
    if (r.keyHash) await store.releaseKey(r.keyHash);
    return reply.code(204).send();
  });

  return app;
}

/** OpenAPI 3.0 from the registered routes' schemas. */
function openapi(routes: RouteOptions[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
    const schema = (r.schema ?? {}) as { summary?: string; params?: { properties: Record<string, unknown>; required?: string[] }; headers?: { properties: Record<string, unknown> }; response?: Record<string, unknown> };
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const method of methods) {
      const parameters = [
        ...Object.entries(schema.params?.properties ?? {}).map(([name, s]) => ({ name, in: 'path', required: true, schema: s })),
        ...Object.entries(schema.headers?.properties ?? {}).filter(([name]) => name !== 'authorization').map(([name, s]) => ({ name, in: 'header', required: false, schema: s })),
      ];
      const responses: Record<string, unknown> = {};
      for (const [status, s] of Object.entries(schema.response ?? { 200: {} })) {
        responses[status.toUpperCase()] = { description: status, content: { 'application/json': { schema: s } } };
      }
      if (r.url === '/v1/jobs/:id/outputs/:name') responses['200'] = { description: 'the file; 206 for a Range', content: Object.fromEntries([...new Set(Object.values(OUTPUT_TYPES))].map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) };
      if (r.url === '/v1/jobs/:id/outputs/alpha/:frame') responses['200'] = { description: 'the PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } };
      if (r.url === '/metrics') responses['200'] = { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } };
      if (method === 'DELETE') responses['204'] = { description: 'cancelled and removed' };
      const body = (r.config as { openapiBody?: unknown } | undefined)?.openapiBody;
      (paths[path] ??= {})[method.toLowerCase()] = {
        summary: schema.summary ?? '',
        ...(parameters.length ? { parameters } : {}),
        ...(body ? { requestBody: { required: true, content: { 'multipart/form-data': { schema: body } } } } : {}),
        responses,
        ...(r.url === '/healthz' ? { security: [] } : {}),
      };
    }
  }
  return {
    openapi: '3.0.3',
    info: { title: 'cleanplate service', version, description: 'Background matting with a clean plate, as jobs.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
