// HTTP helpers for the queue tests: every call goes through real HTTP to a listening app.
export interface Answer { status: number, body: any, headers: Headers }

export async function post (base: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    ...init
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers }
}

export async function get (base: string, path: string): Promise<Answer> {
  const response = await fetch(`${base}${path}`)
  return { status: response.status, body: await response.json(), headers: response.headers }
}

export const enqueue = async (base: string, queue: string, data: unknown, extra: Record<string, unknown> = {}): Promise<Answer> =>
  await post(base, `/queues/${queue}/jobs`, { data, ...extra })
export const claim = async (base: string, queue: string, body: Record<string, unknown> = {}, init: RequestInit = {}): Promise<Answer> =>
  await post(base, `/queues/${queue}/claim`, body, init)
export const ack = async (base: string, queue: string, body: Record<string, unknown>): Promise<Answer> =>
  await post(base, `/queues/${queue}/ack`, body)
export const nack = async (base: string, queue: string, body: Record<string, unknown>): Promise<Answer> =>
  await post(base, `/queues/${queue}/nack`, body)
export const extend = async (base: string, queue: string, body: Record<string, unknown>): Promise<Answer> =>
  await post(base, `/queues/${queue}/extend`, body)
export const counts = async (base: string, queue: string): Promise<Answer> => await get(base, `/queues/${queue}`)
