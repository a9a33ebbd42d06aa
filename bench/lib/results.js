// Writing a run's result files, and bench/results/README.md: the pointer to the newest run of each kind (found
// by file name: the stamps sort in time order), so nothing is copied to a `latest` file.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { resultsDir } from './config.js'

/** A results file name: `<kind>-<stamp>.<ext>`, the main suite's without a kind (`<stamp>.<ext>`). */
const RESULT = /^(?:([a-z][a-z0-9]*)-)?(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)\.(json|md|svg)$/

/**
 * Writes `files` ({ json, md, svg? } texts) as <outDir>/<kind->stamp.<ext>; `pointer` also rewrites
 * bench/results/README.md. Returns the path without extension.
 */
export function writeResults ({ outDir, kind = '', stamp, files, pointer }) {
  mkdirSync(outDir, { recursive: true })
  const base = path.join(outDir, kind === '' ? stamp : `${kind}-${stamp}`)
  for (const [ext, text] of Object.entries(files)) writeFileSync(`${base}.${ext}`, text)
  if (pointer) writePointer()
  return base
}

/** The newest run of each kind in bench/results/, by name: `{ kind: { stamp, files: [name, …] } }`. */
export function newestRuns (dir = resultsDir) {
  const out = {}
  for (const name of readdirSync(dir).sort()) {
    const m = RESULT.exec(name)
    if (m === null) continue
    const kind = m[1] ?? 'suite'
    if (out[kind] === undefined || out[kind].stamp < m[2]) out[kind] = { stamp: m[2], files: [] }
    if (out[kind].stamp === m[2]) out[kind].files.push(name)
  }
  return out
}

const TITLES = { suite: 'the suite (`npm run bench`)', queues: 'work queues (`npm run bench:queues`)', scale: 'scale (`npm run bench -- --scale N`)' }

export function writePointer () {
  const lines = [
    '# Benchmark results',
    '',
    'Every run is kept, named by the time it started (`<kind>-<date>.{json,md,svg}`; the suite\'s without a kind).',
    'The newest of each kind, by name (this file is rewritten by every full run):',
    ''
  ]
  for (const [kind, { stamp, files }] of Object.entries(newestRuns())) {
    lines.push(`- ${TITLES[kind] ?? `\`${kind}\``}: ${stamp} — ${files.map((f) => `[${f.slice(f.lastIndexOf('.') + 1)}](${f})`).join(', ')}`)
  }
  lines.push('', '`candidates/` holds patches to lib/ measured with `--candidate` and not applied yet (see its README).', '')
  writeFileSync(path.join(resultsDir, 'README.md'), lines.join('\n'))
}
