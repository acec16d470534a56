import { useState } from 'react';

export default function App() {
  const [count, setCount] = useState(0);

  return (
    <main className="app">
      <h1>My App</h1>
      <p className="subtitle">Built with Vite and React.</p>
      <div className="card">
        <button type="button" onClick={() => setCount((c) => c + 1)}>
          Count is {count}
        </button>
      </div>
    </main>
  );
}
