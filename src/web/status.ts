/** The one status line (data-testid="status"): a state for scripts (data-state) and a plain sentence for people. */
export type State = 'loading' | 'starting' | 'ready' | 'countdown' | 'capturing' | 'live' | 'photo' | 'working' | 'done' | 'error';

export class Status {
  constructor(private readonly element: HTMLElement) {}

  set(state: State, text: string): void {
    this.element.dataset.state = state;
    this.element.textContent = text;
  }

  get state(): State {
    return this.element.dataset.state as State;
  }
}
