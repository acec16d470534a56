import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import App from './App.jsx';
import './index.css';

const root = createRoot(document.getElementById('root'));

function render(Component) {
  root.render(
    <StrictMode>
      <Component />
    </StrictMode>,
  );
}

render(App);

// Hot reload without a React plugin: an edit of App.jsx (or anything it imports) renders
// the new component in place instead of reloading the page.
if (import.meta.hot) {
  import.meta.hot.accept('./App.jsx', (next) => {
    if (next) render(next.default);
  });
}
