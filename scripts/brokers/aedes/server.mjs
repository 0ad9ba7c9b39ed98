// aedes 1.x on one loopback listener, in-memory persistence, anonymous
// clients allowed. usage: node server.mjs PORT [HOST]
import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const port = Number(process.argv[2] || 1883)
const host = process.argv[3] || '127.0.0.1'
const aedes = await Aedes.createBroker()
const server = createServer(aedes.handle)
server.listen({ port, host, backlog: 4096 }, () => console.log(`aedes listening on ${host}:${port}`))
const stop = () => server.close(() => aedes.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
