// Shows why the last sign-in failed. Only fixed messages: the URL's error
// word selects one, it is never displayed itself.
const MESSAGES = {
  bad: 'That admin token is not valid.',
  rate: 'Too many failed sign-ins. Wait a few minutes and try again.',
};

const word = new URLSearchParams(window.location.search).get('error');
const box = document.getElementById('sign-in-error');
if (box && word && Object.hasOwn(MESSAGES, word)) {
  box.textContent = MESSAGES[word];
  box.hidden = false;
  document.getElementById('token')?.setAttribute('aria-describedby', 'sign-in-error');
}
