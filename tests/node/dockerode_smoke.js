// dockerode, unchanged, against berthd (DOCKER_HOST=unix:///path.sock).
//
// Run by tests/tests/dockerode.rs with a private berthd that has the busybox image. Every step
// asserts and prints "ok <step>" when it passed; the Rust test checks that all of them came.
// Everything the script creates is named "dode-*" and removed at the end, also after a failure.
'use strict';

const assert = require('node:assert/strict');
const { PassThrough, Writable } = require('node:stream');
const Docker = require('dockerode');
const tar = require('tar-stream');

const host = process.env.DOCKER_HOST || 'unix:///run/berth/berth.sock';
assert.ok(host.startsWith('unix://'), `DOCKER_HOST must be a unix socket: ${host}`);
const docker = new Docker({ socketPath: host.slice('unix://'.length) });
const PREFIX = 'dode-';

function ok(what) {
  process.stdout.write(`ok ${what}\n`);
}

// A Writable collecting what is written to it.
function sink() {
  const chunks = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  w.text = () => Buffer.concat(chunks).toString();
  return w;
}

// Resolves when `stream` ends (or closes), rejects on its error or after `ms`.
function ended(stream, ms, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for the end of ${what}`)), ms);
    const done = () => {
      clearTimeout(t);
      resolve();
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]);
}

// Newline-delimited JSON objects from a stream until `until(obj)` is true (then resolves with
// all objects read) or the stream ends.
function readJsonLines(stream, until, ms, what) {
  return new Promise((resolve, reject) => {
    const objs = [];
    let buf = '';
    let finished = false;
    const finish = (err) => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      if (err) reject(err);
      else resolve(objs);
    };
    const t = setTimeout(
      () => finish(new Error(`timed out reading ${what}; got ${JSON.stringify(objs)}`)),
      ms,
    );
    stream.on('data', (chunk) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let obj;
        try {
          obj = JSON.parse(line);
        } catch (e) {
          finish(new Error(`${what}: not JSON: ${line}`));
          return;
        }
        objs.push(obj);
        if (until(obj)) {
          finish();
          return;
        }
      }
    });
    stream.on('end', () => finish());
    stream.on('error', (e) => finish(e));
  });
}

// A tar archive (Buffer) of { name: content } regular files.
function makeTar(files) {
  return new Promise((resolve, reject) => {
    const pack = tar.pack();
    const chunks = [];
    pack.on('data', (c) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
    for (const [name, content] of Object.entries(files)) {
      pack.entry({ name, mode: 0o644, mtime: new Date(1700000000000) }, content);
    }
    pack.finalize();
  });
}

// The entries of a tar stream: [{ name, type, content }].
function readTar(stream) {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    const entries = [];
    extract.on('entry', (header, body, next) => {
      const chunks = [];
      body.on('data', (c) => chunks.push(c));
      body.on('end', () => {
        entries.push({ name: header.name, type: header.type, content: Buffer.concat(chunks).toString() });
        next();
      });
      body.resume();
    });
    extract.on('finish', () => resolve(entries));
    extract.on('error', reject);
    stream.pipe(extract);
  });
}

// Expects `promise` to reject with an HTTP error of `status`; returns the error.
async function expectStatus(promise, status, what) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.statusCode, status, `${what}: ${e.message}`);
    return e;
  }
  assert.fail(`${what}: no error (expected HTTP ${status})`);
}

async function cleanup() {
  const containers = await docker.listContainers({ all: true }).catch(() => []);
  for (const c of containers) {
    if (c.Names.some((n) => n.startsWith('/' + PREFIX))) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }
  }
  for (const ref of [PREFIX + 'built:latest', PREFIX + 'committed:latest']) {
    await docker.getImage(ref).remove({ force: true }).catch(() => {});
  }
  const networks = await docker.listNetworks().catch(() => []);
  for (const n of networks) {
    if (n.Name.startsWith(PREFIX)) await docker.getNetwork(n.Id).remove().catch(() => {});
  }
  const { Volumes } = await docker.listVolumes().catch(() => ({ Volumes: [] }));
  for (const v of Volumes || []) {
    if (v.Name.startsWith(PREFIX)) await docker.getVolume(v.Name).remove().catch(() => {});
  }
}

async function systemCalls() {
  const pong = await docker.ping();
  assert.equal(pong.toString(), 'OK');
  const v = await docker.version();
  assert.equal(v.Os, 'linux');
  assert.match(v.ApiVersion, /^1\.\d+$/);
  const info = await docker.info();
  assert.equal(typeof info.Containers, 'number');
  assert.equal(info.OSType, 'linux');
  const images = await docker.listImages();
  assert.ok(images.some((i) => (i.RepoTags || []).includes('busybox:latest')), JSON.stringify(images));
  const img = await docker.getImage('busybox').inspect();
  assert.match(img.Id, /^sha256:[0-9a-f]{64}$/);
  const df = await docker.df();
  // The legacy lists (API < 1.53, e.g. dockerd 20.10) or the usage summaries (1.52+, what an
  // unversioned request gets from berthd).
  assert.ok(Array.isArray(df.Images) || typeof (df.ImageUsage || {}).TotalCount === 'number', JSON.stringify(df));
  ok('ping version info');
}

// docker.run: create, attach (multiplexed, not hijacked), start, wait; stdout and stderr apart.
async function runDemux() {
  const out = sink();
  const err = sink();
  const [res, container] = await withTimeout(
    docker.run('busybox', ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'], [out, err], {
      name: PREFIX + 'run',
      Tty: false,
    }),
    30000,
    'docker.run',
  );
  assert.equal(res.StatusCode, 3);
  assert.equal(out.text(), 'to-out\n');
  assert.equal(err.text(), 'to-err\n');
  await container.remove();
  ok('run demux');
}

// Hijacked attach with stdin: write, end (half-close), read the echo back, exit 0.
async function attachStdin() {
  const c = await docker.createContainer({
    name: PREFIX + 'stdin',
    Image: 'busybox',
    Cmd: ['sh', '-c', 'cat; echo done >&2'],
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const stream = await withTimeout(
    c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }),
    15000,
    'attach',
  );
  const out = sink();
  const err = sink();
  c.modem.demuxStream(stream, out, err);
  const end = ended(stream, 30000, 'the attach stream');
  await c.start();
  stream.write('line one\n');
  stream.write('line two\n');
  stream.end();
  await end;
  stream.destroy();
  const res = await withTimeout(c.wait(), 30000, 'wait');
  assert.equal(res.StatusCode, 0);
  assert.equal(out.text(), 'line one\nline two\n');
  assert.equal(err.text(), 'done\n');
  await c.remove();
  ok('attach stdin hijack');
}

// exec create/start (hijacked, with and without stdin), demux, inspect the exit code.
async function execDemux(c) {
  const exec = await c.exec({
    Cmd: ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 7'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = sink();
  const err = sink();
  c.modem.demuxStream(stream, out, err);
  await ended(stream, 30000, 'the exec stream');
  // The server closed its side; a hijacked socket is half-open in node until it is closed here.
  stream.destroy();
  assert.equal(out.text(), 'exec-out\n');
  assert.equal(err.text(), 'exec-err\n');
  const info = await exec.inspect();
  assert.equal(info.ExitCode, 7);
  assert.equal(info.Running, false);

  const cat = await c.exec({
    Cmd: ['sh', '-c', 'tr a-z A-Z'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const s2 = await cat.start({ hijack: true, stdin: true });
  const out2 = sink();
  c.modem.demuxStream(s2, out2, sink());
  const end2 = ended(s2, 30000, 'the exec stdin stream');
  s2.write('shout\n');
  s2.end();
  await end2;
  s2.destroy();
  assert.equal(out2.text(), 'SHOUT\n');
  assert.equal((await cat.inspect()).ExitCode, 0);

  // Detached exec: the process runs without a stream.
  const touch = await c.exec({ Cmd: ['touch', '/tmp/detached'] });
  (await touch.start({ Detach: true })).resume();
  let code = null;
  for (let i = 0; i < 50 && code === null; i++) {
    const i2 = await touch.inspect();
    if (!i2.Running && i2.ExitCode !== null) code = i2.ExitCode;
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(code, 0);
  ok('exec demux');
}

// logs: one-shot with timestamps and tail, and follow until the container exits.
async function logsFollow() {
  const c = await docker.createContainer({
    name: PREFIX + 'logs',
    Image: 'busybox',
    Cmd: ['sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done'],
  });
  await c.start();
  const stream = await c.logs({ follow: true, stdout: true, stderr: true });
  const out = sink();
  const err = sink();
  c.modem.demuxStream(stream, out, err);
  await ended(stream, 30000, 'the followed logs');
  assert.equal(out.text(), 'out1\nout2\nout3\n');
  assert.equal(err.text(), 'err1\nerr2\nerr3\n');
  await c.wait();
  // Without follow the answer is a Buffer of frames. The tail counts entries of both streams
  // (the last two are out3 and err3), then each goes to its stream.
  const buf = await c.logs({ stdout: true, stderr: true, timestamps: true, tail: 2 });
  const tailOut = sink();
  const tailErr = sink();
  const pt = new PassThrough();
  c.modem.demuxStream(pt, tailOut, tailErr);
  pt.end(buf);
  await new Promise((r) => setImmediate(r));
  const got = (tailOut.text() + tailErr.text()).trim().split('\n');
  assert.equal(got.length, 2, tailOut.text() + tailErr.text());
  for (const line of got) {
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (out3|err3)$/);
  }
  assert.match(tailOut.text(), / out3\n$/);
  assert.match(tailErr.text(), / err3\n$/);
  await c.remove();
  ok('logs follow');
}

// putArchive, getArchive, infoArchive.
async function archives(c) {
  const archive = await makeTar({ 'hello.txt': 'hello archive\n', 'sub/nested.txt': 'nested\n' });
  await c.putArchive(archive, { path: '/tmp' });
  const stream = await c.getArchive({ path: '/tmp/hello.txt' });
  const entries = await readTar(stream);
  assert.deepEqual(
    entries.map((e) => [e.name, e.content]),
    [['hello.txt', 'hello archive\n']],
  );
  const dir = await readTar(await c.getArchive({ path: '/tmp/sub' }));
  const names = dir.map((e) => e.name.replace(/\/$/, '')).sort();
  assert.deepEqual(names, ['sub', 'sub/nested.txt']);
  const head = await c.infoArchive({ path: '/tmp/hello.txt' });
  head.resume();
  const stat = JSON.parse(Buffer.from(head.headers['x-docker-container-path-stat'], 'base64').toString());
  assert.equal(stat.name, 'hello.txt');
  assert.equal(stat.size, 14);
  await expectStatus(c.getArchive({ path: '/no/such/file' }), 404, 'getArchive of a missing path');
  await expectStatus(
    c.putArchive(archive, { path: '/no/such/dir' }),
    404,
    'putArchive into a missing directory',
  );
  ok('archives');
}

// buildImage from a tar stream made by tar-stream; progress through followProgress.
async function build() {
  const pack = tar.pack();
  pack.entry(
    { name: 'Dockerfile' },
    'FROM busybox\nARG GREETING=unset\nCOPY msg.txt /msg.txt\nRUN echo "$GREETING" > /greeting\nLABEL built.by=dockerode\nCMD ["cat", "/msg.txt"]\n',
  );
  pack.entry({ name: 'msg.txt' }, 'built with dockerode\n');
  pack.finalize();
  const stream = await docker.buildImage(pack, {
    t: PREFIX + 'built',
    buildargs: { GREETING: 'hi' },
    rm: true,
  });
  const events = await withTimeout(
    new Promise((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    ),
    120000,
    'build',
  );
  assert.ok(!events.some((e) => e.error), JSON.stringify(events));
  const text = events.map((e) => e.stream || '').join('');
  assert.match(text, /Step 1\/6 : FROM busybox/);
  const aux = events.find((e) => e.aux && e.aux.ID);
  assert.ok(aux, JSON.stringify(events));
  const img = await docker.getImage(PREFIX + 'built').inspect();
  assert.equal(img.Id, aux.aux.ID);
  assert.equal(img.Config.Labels['built.by'], 'dockerode');
  const out = sink();
  // Not AutoRemove: docker.run waits after the start returned, and a quick container may be
  // gone by then (a 404 from Docker too).
  // Under a TTY (dockerode's default for run) the lines end in \r\n, as with Docker.
  const [res, ran] = await docker.run(PREFIX + 'built', ['sh', '-c', 'cat /msg.txt /greeting'], out, {
    name: PREFIX + 'built-run',
  });
  assert.equal(out.text(), 'built with dockerode\r\nhi\r\n');
  assert.equal(res.StatusCode, 0);
  await ran.remove();

  // A failing RUN: the error comes in the progress stream of a 200 answer.
  const bad = tar.pack();
  bad.entry({ name: 'Dockerfile' }, 'FROM busybox\nRUN exit 4\n');
  bad.finalize();
  const badStream = await docker.buildImage(bad, { t: PREFIX + 'broken' });
  const failure = await new Promise((resolve) =>
    docker.modem.followProgress(badStream, (err, res) => resolve(err || res)),
  );
  const msg = failure instanceof Error ? failure.message : JSON.stringify(failure);
  assert.match(msg, /returned a non-zero code: 4/);
  ok('build');
}

// getEvents with filters, streaming; then a bounded since/until query.
async function events() {
  const since = Math.floor(Date.now() / 1000) - 1;
  const name = PREFIX + 'events';
  const stream = await docker.getEvents({
    filters: { type: ['container'], container: [name], event: ['create', 'start', 'die'] },
  });
  const reading = readJsonLines(stream, (e) => e.Action === 'die', 30000, 'events');
  const c = await docker.createContainer({ name, Image: 'busybox', Cmd: ['true'] });
  await c.start();
  await c.wait();
  const seen = await reading;
  stream.destroy();
  assert.deepEqual(
    seen.map((e) => e.Action),
    ['create', 'start', 'die'],
  );
  for (const e of seen) {
    assert.equal(e.Type, 'container');
    assert.equal(e.Actor.ID, c.id);
    assert.equal(e.Actor.Attributes.name, name);
    // The legacy `id` is gone from API 1.52 (what an unversioned request gets).
    assert.ok(e.id === undefined || e.id === c.id, JSON.stringify(e));
    assert.equal(typeof e.timeNano, 'number');
  }
  assert.equal(seen[2].Actor.Attributes.exitCode, '0');
  await c.remove();
  const until = Math.floor(Date.now() / 1000) + 1;
  const past = await docker.getEvents({
    since,
    until,
    filters: { container: [name], event: ['destroy'] },
  });
  const list = await readJsonLines(past, () => false, 15000, 'since/until events');
  assert.deepEqual(
    list.map((e) => e.Action),
    ['destroy'],
  );
  ok('events');
}

// stats: one-shot (stream=false) and streaming.
async function stats(c) {
  const one = await c.stats({ stream: false });
  assert.equal(typeof one.memory_stats.usage, 'number', JSON.stringify(one.memory_stats));
  assert.equal(typeof one.cpu_stats.cpu_usage.total_usage, 'number');
  assert.ok(one.precpu_stats.cpu_usage, JSON.stringify(one.precpu_stats));
  assert.equal(one.name, '/' + PREFIX + 'main');
  assert.equal(one.id, c.id);
  assert.ok(one.pids_stats.current >= 1, JSON.stringify(one.pids_stats));
  const stream = await c.stats({ stream: true });
  let n = 0;
  const got = await readJsonLines(stream, () => ++n >= 2, 15000, 'stats stream');
  stream.destroy();
  assert.equal(got.length, 2, `stats samples: ${got.length}`);
  assert.ok(new Date(got[1].read) > new Date(got[0].read));
  ok('stats');
}

// Errors come as statusCode + json.message, as dockerode users test them.
async function errors(c) {
  const e404 = await expectStatus(docker.getContainer('dode-nope').inspect(), 404, 'inspect missing');
  assert.equal(e404.json.message, 'No such container: dode-nope');
  const i404 = await expectStatus(docker.getImage('dode-nope:1').inspect(), 404, 'image missing');
  // Docker 28's words; dockerd 20.10 doubled them ("no such image: x: No such image: x").
  assert.match(i404.json.message, /(^|: )No such image: dode-nope:1$/);
  const v404 = await expectStatus(docker.getVolume('dode-nope').inspect(), 404, 'volume missing');
  assert.equal(v404.json.message, 'get dode-nope: no such volume');
  const n404 = await expectStatus(docker.getNetwork('dode-nope').inspect(), 404, 'network missing');
  assert.equal(n404.json.message, 'network dode-nope not found');
  const e409 = await expectStatus(
    docker.createContainer({ name: PREFIX + 'main', Image: 'busybox' }),
    409,
    'create with a taken name',
  );
  assert.match(e409.json.message, /^Conflict\. The container name "\/dode-main" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\.$/);
  const r409 = await expectStatus(c.remove(), 409, 'remove running');
  // Docker 28's words (berth's); dockerd 20.10: "You cannot remove a running container <id>…".
  assert.match(
    r409.json.message,
    /^(cannot remove container "\/dode-main": container is running: stop the container before removing or force remove|You cannot remove a running container [0-9a-f]{64}\. Stop the container before attempting removal or force remove)$/,
  );
  await expectStatus(c.start(), 304, 'start started');
  const stopped = await docker.createContainer({ name: PREFIX + 'stopped', Image: 'busybox', Cmd: ['true'] });
  await expectStatus(stopped.stop(), 304, 'stop stopped');
  const bad = await expectStatus(
    docker.createContainer({ Image: 'busybox', HostConfig: { RestartPolicy: { Name: 'sometimes' } } }),
    400,
    'bad restart policy',
  );
  assert.match(bad.json.message, /invalid restart policy/);
  const noimg = await expectStatus(
    docker.createContainer({ Image: 'dode-nope:1' }),
    404,
    'create from a missing image',
  );
  assert.match(noimg.json.message, /(^|: )No such image: dode-nope:1$/);
  await stopped.remove();
  ok('errors');
}

// The rest of the everyday container verbs.
async function lifecycle(c) {
  const top = await c.top();
  assert.ok(top.Titles.includes('PID'), JSON.stringify(top));
  assert.ok(top.Processes.some((p) => p.join(' ').includes('sleep')), JSON.stringify(top));
  await c.pause();
  assert.equal((await c.inspect()).State.Status, 'paused');
  await c.unpause();
  assert.equal((await c.inspect()).State.Status, 'running');
  await c.update({ Memory: 64 * 1024 * 1024, MemorySwap: -1 });
  assert.equal((await c.inspect()).HostConfig.Memory, 64 * 1024 * 1024);
  const changes = await c.changes();
  assert.ok(Array.isArray(changes) && changes.some((ch) => ch.Path === '/tmp'), JSON.stringify(changes));
  const list = await docker.listContainers({ filters: { name: [PREFIX + 'main'] } });
  assert.deepEqual(
    list.map((x) => x.Id),
    [c.id],
  );
  assert.equal(list[0].State, 'running');
  const committed = await c.commit({ repo: PREFIX + 'committed', tag: 'latest', comment: 'from dockerode' });
  assert.match(committed.Id, /^sha256:/);
  const exported = await readTar(await c.export());
  assert.ok(exported.some((e) => e.name.replace(/^\.?\//, '') === 'tmp/hello.txt'), 'export lacks /tmp/hello.txt');
  await c.rename({ name: PREFIX + 'renamed' });
  assert.equal((await c.inspect()).Name, '/' + PREFIX + 'renamed');
  await c.rename({ name: PREFIX + 'main' });
  await c.restart({ t: 1 });
  assert.equal((await c.inspect()).RestartCount, 0);
  await c.kill({ signal: 'SIGKILL' });
  const res = await c.wait();
  assert.equal(res.StatusCode, 137);
  ok('lifecycle');
}

async function networksVolumes() {
  const net = await docker.createNetwork({ Name: PREFIX + 'net', Driver: 'bridge', Labels: { t: 'dode' } });
  const c = await docker.createContainer({ name: PREFIX + 'netc', Image: 'busybox', Cmd: ['sleep', '30'] });
  await net.connect({ Container: c.id, EndpointConfig: { Aliases: ['dode-alias'] } });
  await c.start();
  const ni = await net.inspect();
  assert.equal(ni.Name, PREFIX + 'net');
  assert.ok(ni.Containers[c.id], JSON.stringify(ni.Containers));
  const ci = await c.inspect();
  assert.ok(ci.NetworkSettings.Networks[PREFIX + 'net'].Aliases.includes('dode-alias'));
  await net.disconnect({ Container: c.id, Force: true });
  await c.remove({ force: true });
  await net.remove();
  const vol = await docker.createVolume({ Name: PREFIX + 'vol', Labels: { t: 'dode' } });
  assert.equal(vol.name, PREFIX + 'vol');
  const vi = await vol.inspect();
  assert.equal(vi.Driver, 'local');
  assert.equal(vi.Labels.t, 'dode');
  const { Volumes } = await docker.listVolumes({ filters: { label: ['t=dode'] } });
  assert.deepEqual(
    Volumes.map((v) => v.Name),
    [PREFIX + 'vol'],
  );
  await docker.getVolume(PREFIX + 'vol').remove();
  const pruned = await docker.pruneContainers({ filters: { label: ['dode-nothing'] } });
  assert.ok('ContainersDeleted' in pruned && 'SpaceReclaimed' in pruned, JSON.stringify(pruned));
  ok('networks volumes');
}

async function main() {
  await cleanup();
  try {
    await systemCalls();
    await runDemux();
    await attachStdin();
    const main = await docker.createContainer({
      name: PREFIX + 'main',
      Image: 'busybox',
      Cmd: ['sleep', '300'],
      Labels: { t: 'dode' },
    });
    await main.start();
    await execDemux(main);
    await logsFollow();
    await archives(main);
    await stats(main);
    await errors(main);
    await lifecycle(main);
    await build();
    await events();
    await networksVolumes();
  } finally {
    await cleanup();
  }
}

const watchdog = setTimeout(() => {
  console.error('dockerode suite: overall timeout');
  process.exit(2);
}, 300000);

main().then(
  () => {
    clearTimeout(watchdog);
    ok('all');
    if (process.env.DODE_DEBUG) for (const h of process._getActiveHandles()) console.error('handle', h.constructor.name, h._httpMessage ? h._httpMessage.path : '', h.destroyed, h.readyState);
  },
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
