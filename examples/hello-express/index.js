// The article's app: one express route on port 3000. Small on purpose: what makes its
// image large is everything around it (node, npm, a full Debian), which is the point.
const express = require('express');

const app = express();
const port = Number(process.env.PORT || 3000);

app.get('/', (req, res) => res.send('Hello World!'));
app.get('/healthz', (req, res) => res.json({ ok: true }));

app.listen(port, () => console.log(`hello-express listening on port ${port}`));
