// Log in and register. The access token stays in memory (api.js); nothing is stored.
import { api, login } from "../api.js";
import { html, useState } from "../lib.js";
import { Field, Message } from "../ui.js";

function useForm(initial) {
  const [values, setValues] = useState(initial);
  const bind = (name) => ({
    id: `auth-${name}`,
    name,
    value: values[name],
    onInput: (event) => setValues({ ...values, [name]: event.currentTarget.value }),
  });
  return [values, bind];
}

/** A form's submit handler around `action`: busy while it runs, its failure as a message. */
function useSubmit(action) {
  const [message, setMessage] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    try {
      await action();
    } catch (error) {
      setMessage({ kind: "error", text: error.message });
    } finally {
      setBusy(false);
    }
  }
  return { submit, busy, message };
}

export function LoginView({ onSignedIn }) {
  const [values, bind] = useForm({ email: "", password: "" });
  const { submit, busy, message } = useSubmit(async () => {
    await login(values.email, values.password);
    await onSignedIn();
  });
  return html`<section class="panel narrow" aria-labelledby="login-title">
    <h1 id="login-title">Log in</h1>
    <form onSubmit=${submit}>
      <${Field} label="Email" id="auth-email">
        <input type="email" autocomplete="username" required ...${bind("email")} />
      <//>
      <${Field} label="Password" id="auth-password">
        <input type="password" autocomplete="current-password" required ...${bind("password")} />
      <//>
      <${Message} message=${message} />
      <button type="submit" class="primary" disabled=${busy}>Log in</button>
    </form>
    <p>No account yet? <a href="#/register">Register</a></p>
  </section>`;
}

export function RegisterView({ onSignedIn }) {
  const [values, bind] = useForm({ email: "", password: "", full_name: "" });
  const { submit, busy, message } = useSubmit(async () => {
    const body = { email: values.email, password: values.password };
    if (values.full_name.trim()) body.full_name = values.full_name.trim();
    await api("POST", "/auth/register", { body });
    await login(values.email, values.password);
    await onSignedIn();
  });
  return html`<section class="panel narrow" aria-labelledby="register-title">
    <h1 id="register-title">Create an account</h1>
    <form onSubmit=${submit}>
      <${Field} label="Full name (optional)" id="auth-full_name">
        <input type="text" autocomplete="name" ...${bind("full_name")} />
      <//>
      <${Field} label="Email" id="auth-email">
        <input type="email" autocomplete="username" required ...${bind("email")} />
      <//>
      <${Field} label="Password" id="auth-password" hint="8 to 72 bytes.">
        <input type="password" autocomplete="new-password" required minlength="8"
          aria-describedby="auth-password-hint" ...${bind("password")} />
      <//>
      <${Message} message=${message} />
      <button type="submit" class="primary" disabled=${busy}>Register</button>
    </form>
    <p>Already registered? <a href="#/login">Log in</a></p>
  </section>`;
}
