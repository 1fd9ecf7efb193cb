// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-assertions': ['error', { assertionStyle: 'never' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-imports': 'off',
    },
  },
  {
    // Test doubles often implement async interfaces synchronously.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  // Layering: lower layers never import upward.
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: ['**/workspace/**', '**/images/**', '**/agent/**', 'dockerode'],
        },
      ],
    },
  },
  {
    files: ['workspace/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/images/**', '**/agent/**', 'dockerode'] },
      ],
    },
  },
  {
    files: ['images/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/agent/**'] }],
    },
  },
);
